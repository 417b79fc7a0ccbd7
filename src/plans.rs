//! The catalogue: plans, spaces and releases, fixed and the same for every account. Its
//! shapes follow Bonsai's, as its official client reads them; the links in them are added
//! by `routes::api::catalogue`, which knows the server's public address.

use serde::Serialize;

/// A search engine version a cluster can run.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub name: &'static str,
    pub slug: &'static str,
    pub service_type: &'static str,
    pub version: &'static str,
    pub package_name: &'static str,
    pub multitenant: bool,
}

/// Where a cluster lives. Its path has slashes, as Bonsai's do: `omc/bonsai/us-east-1/common`.
#[derive(Debug, Clone)]
pub struct Space {
    pub path: &'static str,
    pub private_network: bool,
    pub provider: &'static str,
    /// The provider's region, prefixed with the provider: `aws-us-east-1`.
    pub region: &'static str,
}

impl Space {
    /// The region without the provider (`us-east-1`), as cluster host names carry it.
    pub fn short_region(&self) -> &'static str {
        self.region
            .strip_prefix(self.provider)
            .and_then(|r| r.strip_prefix('-'))
            .unwrap_or(self.region)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub slug: &'static str,
    pub name: &'static str,
    pub price_in_cents: u32,
    pub billing_interval_in_months: u32,
    pub single_tenant: bool,
    pub private_network: bool,
    /// Release slugs; the first is the default.
    pub available_releases: &'static [&'static str],
    /// Space paths; the first is the default.
    pub available_spaces: &'static [&'static str],
}

pub const RELEASES: &[Release] = &[
    Release {
        name: "Elasticsearch 7.10.2",
        slug: "elasticsearch-7.10.2",
        service_type: "elasticsearch",
        version: "7.10.2",
        package_name: "7.10.2",
        multitenant: true,
    },
    Release {
        name: "OpenSearch 2.6.0",
        slug: "opensearch-2.6.0",
        service_type: "opensearch",
        version: "2.6.0",
        package_name: "2.6.0",
        multitenant: true,
    },
    Release {
        name: "OpenSearch 2.13.0",
        slug: "opensearch-2.13.0",
        service_type: "opensearch",
        version: "2.13.0",
        package_name: "2.13.0",
        multitenant: false,
    },
];

pub const SPACES: &[Space] = &[
    Space {
        path: "omc/bonsai/us-east-1/common",
        private_network: false,
        provider: "aws",
        region: "aws-us-east-1",
    },
    Space {
        path: "omc/bonsai/eu-west-1/common",
        private_network: false,
        provider: "aws",
        region: "aws-eu-west-1",
    },
    Space {
        path: "omc/bonsai-gcp/us-central1/common",
        private_network: false,
        provider: "gcp",
        region: "gcp-us-central1",
    },
];

const SHARED_RELEASES: &[&str] = &["elasticsearch-7.10.2", "opensearch-2.6.0"];
const ALL_SPACES: &[&str] = &[
    "omc/bonsai/us-east-1/common",
    "omc/bonsai/eu-west-1/common",
    "omc/bonsai-gcp/us-central1/common",
];

pub const PLANS: &[Plan] = &[
    Plan {
        slug: "sandbox",
        name: "Sandbox",
        price_in_cents: 0,
        billing_interval_in_months: 1,
        single_tenant: false,
        private_network: false,
        available_releases: SHARED_RELEASES,
        available_spaces: ALL_SPACES,
    },
    Plan {
        slug: "standard",
        name: "Standard",
        price_in_cents: 5000,
        billing_interval_in_months: 1,
        single_tenant: false,
        private_network: false,
        available_releases: SHARED_RELEASES,
        available_spaces: ALL_SPACES,
    },
    Plan {
        slug: "business",
        name: "Business",
        price_in_cents: 50000,
        billing_interval_in_months: 1,
        single_tenant: true,
        private_network: true,
        available_releases: &[
            "opensearch-2.13.0",
            "elasticsearch-7.10.2",
            "opensearch-2.6.0",
        ],
        available_spaces: &["omc/bonsai/us-east-1/common", "omc/bonsai/eu-west-1/common"],
    },
];

pub fn find(slug: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.slug == slug)
}

pub fn space(path: &str) -> Option<&'static Space> {
    SPACES.iter().find(|s| s.path == path)
}

pub fn release(slug: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.slug == slug)
}

pub fn default_plan() -> &'static Plan {
    &PLANS[0]
}

impl Plan {
    pub fn offers_space(&self, path: &str) -> bool {
        self.available_spaces.contains(&path)
    }

    pub fn offers_release(&self, slug: &str) -> bool {
        self.available_releases.contains(&slug)
    }
}

/// What a new cluster runs on: a plan, with a space and a release it offers.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub plan: &'static Plan,
    pub space: &'static Space,
    pub release: &'static Release,
}

/// Bonsai's sentences for a name the catalogue doesn't have.
pub fn plan_not_found(raw: &str) -> String {
    format!("Plan '{raw}' not found. Please use the /plans endpoint for a list of available plans")
}

pub fn space_not_found(raw: &str) -> String {
    format!(
        "Space '{raw}' not found. Please use the /spaces endpoint for a list of available spaces"
    )
}

pub fn release_not_found(raw: &str) -> String {
    format!(
        "Release '{raw}' not found. Please use the /releases endpoint for a list of available releases"
    )
}

impl Placement {
    /// Checks a create's `plan`, `space` and `release`, each optional: a missing plan is
    /// the default plan, a missing space or release the plan's first. Every problem is
    /// reported, each in one sentence.
    pub fn choose(
        plan: Option<&str>,
        space: Option<&str>,
        release: Option<&str>,
    ) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let plan = match plan {
            None => Some(default_plan()),
            Some(raw) => find(raw).or_else(|| {
                errors.push(plan_not_found(raw));
                None
            }),
        };
        let space = match space {
            None => None,
            Some(raw) => self::space(raw).or_else(|| {
                errors.push(space_not_found(raw));
                None
            }),
        };
        let release = match release {
            None => None,
            Some(raw) => self::release(raw).or_else(|| {
                errors.push(release_not_found(raw));
                None
            }),
        };
        let Some(plan) = plan else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let space = space.unwrap_or_else(|| Self::first_space(plan));
        let release = release.unwrap_or_else(|| Self::first_release(plan));
        if !plan.offers_space(space.path) {
            errors.push(format!(
                "Space '{}' is not available on the plan '{}'. Use one of: {}.",
                space.path,
                plan.slug,
                plan.available_spaces.join(", ")
            ));
        }
        if !plan.offers_release(release.slug) {
            errors.push(format!(
                "Release '{}' is not available on the plan '{}'. Use one of: {}.",
                release.slug,
                plan.slug,
                plan.available_releases.join(", ")
            ));
        }
        if errors.is_empty() {
            Ok(Self {
                plan,
                space,
                release,
            })
        } else {
            Err(errors)
        }
    }

    fn first_space(plan: &Plan) -> &'static Space {
        // The unit test below checks that every plan offers spaces the catalogue has.
        plan.available_spaces
            .iter()
            .find_map(|p| space(p))
            .unwrap_or(&SPACES[0])
    }

    fn first_release(plan: &Plan) -> &'static Release {
        plan.available_releases
            .iter()
            .find_map(|r| release(r))
            .unwrap_or(&RELEASES[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_offers_only_what_the_catalogue_has() {
        for plan in PLANS {
            assert!(!plan.available_spaces.is_empty(), "{}", plan.slug);
            assert!(!plan.available_releases.is_empty(), "{}", plan.slug);
            for path in plan.available_spaces {
                assert!(space(path).is_some(), "{} offers {path}", plan.slug);
            }
            for slug in plan.available_releases {
                assert!(release(slug).is_some(), "{} offers {slug}", plan.slug);
            }
        }
    }

    #[test]
    fn a_create_with_nothing_chosen_gets_the_defaults() {
        let chosen = Placement::choose(None, None, None).expect("the defaults");
        assert_eq!(chosen.plan.slug, default_plan().slug);
        assert_eq!(chosen.space.path, default_plan().available_spaces[0]);
        assert_eq!(chosen.release.slug, default_plan().available_releases[0]);
    }

    #[test]
    fn unknown_names_get_bonsais_sentences_all_at_once() {
        let errors = Placement::choose(Some("x"), Some("a/b"), Some("y")).unwrap_err();
        assert_eq!(
            errors,
            vec![
                plan_not_found("x"),
                space_not_found("a/b"),
                release_not_found("y")
            ]
        );
        assert_eq!(
            plan_not_found("x"),
            "Plan 'x' not found. Please use the /plans endpoint for a list of available plans"
        );
    }

    #[test]
    fn a_space_the_plan_does_not_offer_is_refused() {
        let errors = Placement::choose(
            Some("business"),
            Some("omc/bonsai-gcp/us-central1/common"),
            None,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("not available on the plan 'business'"));
    }

    #[test]
    fn short_regions_drop_the_provider() {
        assert_eq!(SPACES[0].short_region(), "us-east-1");
        assert_eq!(SPACES[2].short_region(), "us-central1");
    }
}
