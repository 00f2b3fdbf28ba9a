//! `CapacityPool`: the cluster admin's description of a kind of capacity (spot or on-demand nodes),
//! how pods reach it, and what it costs.

// Each printcolumn(...) repeats `type_ = ...`; clippy mistakes that for a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Toleration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A pool of nodes of one capacity type, with the node selector and tolerations that put a pod on
/// it and its unit prices.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trimtab.dev",
    version = "v1alpha1",
    kind = "CapacityPool",
    plural = "capacitypools",
    shortname = "cpool",
    category = "trimtab",
    doc = "CapacityPool describes a kind of capacity (spot or on-demand nodes): how a pod is placed on it and what it costs.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.capacityType"),
    printcolumn(name = "CPU/h", type_ = "string", json_path = ".spec.price.cpuCoreHour"),
    printcolumn(name = "GiB/h", type_ = "string", json_path = ".spec.price.memoryGiBHour"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("has(self.price) != has(self.priceQuery)").message("set exactly one of price and priceQuery"))]
#[serde(rename_all = "camelCase")]
pub struct CapacityPoolSpec {
    /// Spot (cheap, can be reclaimed) or OnDemand.
    pub capacity_type: CapacityType,

    /// Node labels that select this pool's nodes; added to a placed pod as required node affinity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations a pod needs to run on this pool's nodes (for example the spot taint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub tolerations: Vec<Toleration>,

    /// Taint keys that announce a node is about to be reclaimed; pods on such a node are replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("items" = {"type": "string", "maxLength": 317}))]
    pub interruption_taints: Vec<String>,

    /// Fixed unit prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,

    /// Unit prices read from Prometheus (for example OpenCost's node_cpu_hourly_cost), each query
    /// returning one number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_query: Option<PriceQuery>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityType {
    Spot,
    OnDemand,
}

/// Unit prices, as quantities of zero or more in the cluster's currency: a whole number (1) or a
/// string ("0.0105"); write decimals as strings, as the API server takes only whole numbers
/// unquoted. A replica costs its CPU request times cpuCoreHour plus its memory request in GiB times
/// memoryGiBHour (OpenCost's model).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(type(self.cpuCoreHour) == int ? self.cpuCoreHour > 0 : (!isQuantity(self.cpuCoreHour) || quantity(self.cpuCoreHour).isGreaterThan(quantity('0')))) || (type(self.memoryGiBHour) == int ? self.memoryGiBHour > 0 : (!isQuantity(self.memoryGiBHour) || quantity(self.memoryGiBHour).isGreaterThan(quantity('0'))))").message("cpuCoreHour and memoryGiBHour are both zero: give at least one a price above zero"))]
pub struct Price {
    /// The price of one CPU core for one hour, a quantity of zero or more ("0.0105", or a whole
    /// number such as 1; write decimals as strings).
    #[serde(deserialize_with = "crate::api::quantity::deserialize_quantity")]
    #[schemars(schema_with = "crate::api::quantity::non_negative_quantity_schema")]
    pub cpu_core_hour: String,
    /// The price of one GiB of memory for one hour, a quantity of zero or more ("0.0014", or a
    /// whole number; write decimals as strings).
    #[serde(deserialize_with = "crate::api::quantity::deserialize_quantity")]
    #[schemars(schema_with = "crate::api::quantity::non_negative_quantity_schema")]
    pub memory_gi_b_hour: String,
}

/// Unit prices as PromQL queries.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PriceQuery {
    /// A PromQL query returning the price of one CPU core for one hour.
    #[schemars(length(min = 1, max = 4096))]
    pub cpu_core_hour: String,
    /// A PromQL query returning the price of one GiB of memory for one hour.
    #[schemars(length(min = 1, max = 4096))]
    pub memory_gi_b_hour: String,
}
