//! The catalogue: plans, spaces and releases, the same for every account and fixed while the
//! server runs. It is data: Bonsai's public catalogue compiled in (`catalogue.json`), or a
//! file of the same shape named by `KEYWARD_CATALOGUE`, checked at start. The links in its
//! answers are added by `routes::api::catalogue`, which knows the server's public address.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// A search engine version a cluster can run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub name: String,
    pub slug: String,
    pub service_type: String,
    pub version: String,
    pub package_name: String,
    pub multitenant: bool,
}

/// Where a cluster lives. Its path has slashes, as Bonsai's do: `omc/bonsai/us-east-1/common`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    pub path: String,
    pub private_network: bool,
    pub cloud: Cloud,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cloud {
    pub provider: String,
    /// The provider's region, prefixed with the provider: `aws-us-east-1`.
    pub region: String,
}

impl Space {
    /// The region without the provider (`us-east-1`), as cluster host names carry it.
    pub fn short_region(&self) -> &str {
        let Cloud { provider, region } = &self.cloud;
        region
            .strip_prefix(provider.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .unwrap_or(region)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub slug: String,
    pub name: String,
    pub price_in_cents: u32,
    pub billing_interval_in_months: u32,
    pub single_tenant: bool,
    pub private_network: bool,
    /// Release slugs; the first is the default.
    pub available_releases: Vec<String>,
    /// Space paths; the first is the default.
    pub available_spaces: Vec<String>,
}

/// Plans, spaces and releases, checked to hang together: names unique and readable, and
/// every plan offering at least one release and one space that the catalogue has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub plans: Vec<Plan>,
    pub spaces: Vec<Space>,
    pub releases: Vec<Release>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Catalogue({} plans, {} spaces, {} releases)",
            self.plans.len(),
            self.spaces.len(),
            self.releases.len()
        )
    }
}

/// Bonsai's public catalogue as its official client recorded it (omc/bonsai-api-go,
/// bonsai/fixtures/vcr), so that client's recorded calls replay here unchanged.
const DEFAULT_JSON: &str = include_str!("catalogue.json");

impl Catalogue {
    /// Reads and checks a catalogue; the error is one sentence that names what is wrong.
    pub fn parse(json: &str) -> Result<Self, String> {
        let catalogue: Self = serde_json::from_str(json).map_err(|e| e.to_string())?;
        catalogue.check()?;
        Ok(catalogue)
    }

    /// Reads `KEYWARD_CATALOGUE`'s file, for the life of the process.
    pub fn load(path: &std::path::Path) -> Result<&'static Self, String> {
        let json = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let catalogue = Self::parse(&json)
            .map_err(|e| format!("{} is not a catalogue: {e}", path.display()))?;
        Ok(Box::leak(Box::new(catalogue)))
    }

    fn check(&self) -> Result<(), String> {
        let (plans, spaces, releases) = (&self.plans, &self.spaces, &self.releases);
        if plans.is_empty() || spaces.is_empty() || releases.is_empty() {
            return Err("it needs at least one plan, one space and one release".into());
        }
        let names = plans.iter().map(|p| ("plan", p.slug.as_str()));
        let names = names.chain(releases.iter().map(|r| ("release", r.slug.as_str())));
        let mut seen = std::collections::HashSet::new();
        for (kind, name) in names {
            if !is_slug(name) {
                return Err(format!(
                    "the {kind} slug \"{name}\" must be 1-100 characters of a-z, A-Z, 0-9, '.', '_' and '-'"
                ));
            }
            if !seen.insert((kind, name)) {
                return Err(format!("the {kind} \"{name}\" appears twice"));
            }
        }
        for space in spaces {
            // A space's path is a URL's tail (`/spaces/omc/bonsai/us-east-1/common`).
            if !space
                .path
                .split('/')
                .all(|part| is_slug(part) && part != "." && part != "..")
            {
                return Err(format!(
                    "the space path \"{}\" must be slugs joined by '/'",
                    space.path
                ));
            }
            if !seen.insert(("space", space.path.as_str())) {
                return Err(format!("the space \"{}\" appears twice", space.path));
            }
        }
        for plan in plans {
            if plan.available_releases.is_empty() || plan.available_spaces.is_empty() {
                return Err(format!(
                    "the plan \"{}\" must offer at least one release and one space",
                    plan.slug
                ));
            }
            let offered = plan.available_releases.iter().map(|r| ("release", r));
            let offered = offered.chain(plan.available_spaces.iter().map(|s| ("space", s)));
            for (kind, name) in offered {
                if !seen.contains(&(kind, name.as_str())) {
                    return Err(format!(
                        "the plan \"{}\" offers the {kind} \"{name}\", which the catalogue doesn't have",
                        plan.slug
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn plan(&self, slug: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.slug == slug)
    }

    pub fn space(&self, path: &str) -> Option<&Space> {
        self.spaces.iter().find(|s| s.path == path)
    }

    pub fn release(&self, slug: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.slug == slug)
    }
}

fn is_slug(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The process's catalogue: `KEYWARD_CATALOGUE`'s when the server installed one at start,
/// else the compiled-in default. One for the whole process, because the OpenAPI document's
/// lists of valid names and the rendered answers are built from it once.
static INSTALLED: OnceLock<&'static Catalogue> = OnceLock::new();

pub fn catalogue() -> &'static Catalogue {
    INSTALLED.get_or_init(|| {
        Box::leak(Box::new(
            Catalogue::parse(DEFAULT_JSON).expect("the compiled-in catalogue is checked by a test"),
        ))
    })
}

/// Makes `chosen` the process's catalogue. Only before anything has read it: a server
/// must not answer from two catalogues.
pub fn install(chosen: &'static Catalogue) -> Result<(), String> {
    INSTALLED
        .set(chosen)
        .map_err(|_| "the catalogue was already chosen for this process".to_string())
}

pub fn find(slug: &str) -> Option<&'static Plan> {
    catalogue().plan(slug)
}

pub fn space(path: &str) -> Option<&'static Space> {
    catalogue().space(path)
}

pub fn release(slug: &str) -> Option<&'static Release> {
    catalogue().release(slug)
}

pub fn default_plan() -> &'static Plan {
    &catalogue().plans[0]
}

impl Plan {
    pub fn offers_space(&self, path: &str) -> bool {
        self.available_spaces.iter().any(|s| s == path)
    }

    pub fn offers_release(&self, slug: &str) -> bool {
        self.available_releases.iter().any(|r| r == slug)
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
        if !plan.offers_space(&space.path) {
            errors.push(format!(
                "Space '{}' is not available on the plan '{}'. Use one of: {}.",
                space.path,
                plan.slug,
                plan.available_spaces.join(", ")
            ));
        }
        if !plan.offers_release(&release.slug) {
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
        // `Catalogue::check` made sure every plan offers spaces the catalogue has.
        plan.available_spaces
            .iter()
            .find_map(|p| space(p))
            .unwrap_or(&catalogue().spaces[0])
    }

    fn first_release(plan: &Plan) -> &'static Release {
        plan.available_releases
            .iter()
            .find_map(|r| release(r))
            .unwrap_or(&catalogue().releases[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_bonsais_recorded_catalogue_and_hangs_together() {
        let catalogue = Catalogue::parse(DEFAULT_JSON).expect("the default is a catalogue");
        assert_eq!(
            (
                catalogue.plans.len(),
                catalogue.spaces.len(),
                catalogue.releases.len()
            ),
            (18, 9, 12)
        );
        // What the official client's recorded create call names.
        let nano = catalogue
            .plan("standard-nano-comped")
            .expect("the recorded plan");
        assert!(nano.offers_release("opensearch-2.6.0-mt"));
        assert!(nano.offers_space("omc/bonsai/us-east-1/common"));
    }

    #[test]
    fn a_catalogue_that_does_not_hang_together_is_refused_with_the_reason() {
        let base: serde_json::Value = serde_json::from_str(DEFAULT_JSON).unwrap();
        let broken = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut json = base.clone();
            change(&mut json);
            Catalogue::parse(&json.to_string()).unwrap_err()
        };
        let e = broken(&|j| j["plans"][0]["available_releases"][0] = "elasticsearch-0.1".into());
        assert!(
            e.contains("offers the release \"elasticsearch-0.1\""),
            "{e}"
        );
        let e = broken(&|j| j["spaces"][0]["path"] = "omc/../etc".into());
        assert!(e.contains("slugs joined by '/'"), "{e}");
        let e = broken(&|j| j["releases"][1]["slug"] = j["releases"][0]["slug"].clone());
        assert!(e.contains("appears twice"), "{e}");
        let e = broken(&|j| j["plans"] = serde_json::json!([]));
        assert!(e.contains("at least one plan"), "{e}");
        let e = broken(&|j| j["plans"][0]["colour"] = "green".into());
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = broken(&|j| j["plans"][0]["available_spaces"] = serde_json::json!([]));
        assert!(e.contains("at least one release and one space"), "{e}");
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
    fn a_release_the_plan_does_not_offer_is_refused_naming_what_it_offers() {
        // The sandbox offers Elasticsearch 7.10.2 and OpenSearch 2.6.0 only.
        let errors = Placement::choose(
            Some("sandbox-aws-us-east-1"),
            None,
            Some("elasticsearch-5.6.16"),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "Release 'elasticsearch-5.6.16' is not available on the plan 'sandbox-aws-us-east-1'. \
                 Use one of: elasticsearch-7.10.2, opensearch-2.6.0-mt."
            ]
        );
    }

    #[test]
    fn short_regions_drop_the_provider() {
        assert_eq!(
            space("omc/bonsai/us-east-1/common").unwrap().short_region(),
            "us-east-1"
        );
        assert_eq!(
            space("omc/bonsai-gcp/us-west1/common")
                .unwrap()
                .short_region(),
            "us-west1"
        );
    }
}
