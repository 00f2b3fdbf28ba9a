/// Why a command failed; printed on stderr with a non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(#[from] super::input::InputError),
    #[error("{0}")]
    Invalid(#[from] crate::engine::PolicyError),
    #[error("cannot render YAML: {0}")]
    Yaml(#[from] serde_saphyr::ser::Error),
    #[error("{0}")]
    Run(#[from] super::run::RunError),
    #[error("{0}")]
    Simulate(#[from] super::simulate::SimulateError),
    #[error("{0}")]
    Check(#[from] super::check::CheckError),
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
}
