//! The plan catalogue: fixed, and the same for every account.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub slug: &'static str,
    pub name: &'static str,
    pub price_in_cents: u32,
    pub billing_interval_in_months: u32,
    pub single_tenant: bool,
    pub private_network: bool,
    pub available_regions: &'static [&'static str],
}

const REGIONS: &[&str] = &["aws-us-east-1", "aws-eu-west-1", "gcp-us-central1"];

pub const PLANS: &[Plan] = &[
    Plan {
        slug: "sandbox",
        name: "Sandbox",
        price_in_cents: 0,
        billing_interval_in_months: 1,
        single_tenant: false,
        private_network: false,
        available_regions: REGIONS,
    },
    Plan {
        slug: "standard",
        name: "Standard",
        price_in_cents: 5000,
        billing_interval_in_months: 1,
        single_tenant: false,
        private_network: false,
        available_regions: REGIONS,
    },
    Plan {
        slug: "business",
        name: "Business",
        price_in_cents: 50000,
        billing_interval_in_months: 1,
        single_tenant: true,
        private_network: true,
        available_regions: &["aws-us-east-1", "aws-eu-west-1"],
    },
];

pub fn find(slug: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.slug == slug)
}

pub fn default_plan() -> &'static Plan {
    &PLANS[0]
}
