use super::CliError;

/// `trimtab crd`: every CRD, as YAML on stdout.
pub fn run() -> Result<(), CliError> {
    print!("{}", crate::api::crd::all_as_yaml()?);
    Ok(())
}
