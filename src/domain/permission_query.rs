//! The permission query a verifier asks with: names, `AND`, `OR` and parentheses, AND
//! binding tighter, as in `documents.read AND (billing.write OR admin)`. At most
//! [`MAX_CHARS`] characters and [`MAX_DEPTH`] levels of parentheses, so a query costs a
//! bounded parse and a bounded evaluation.

use super::permission::{Permissions, is_name, is_name_byte};

pub const MAX_CHARS: usize = 1000;
pub const MAX_DEPTH: usize = 10;

/// A parsed query; evaluating it against a token's permissions allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Name(Box<str>),
    And(Vec<Query>),
    Or(Vec<Query>),
}

/// Why a query doesn't parse, and where: `position` counts characters from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub position: usize,
    pub problem: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at position {}", self.problem, self.position)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Name(&'a str),
    And,
    Or,
    Open,
    Close,
}

impl Query {
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let chars = raw.chars().count();
        if chars > MAX_CHARS {
            return Err(QueryError {
                position: MAX_CHARS,
                problem: format!(
                    "the query is {chars} characters, more than the {MAX_CHARS} allowed"
                ),
            });
        }
        let tokens = lex(raw)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            end: chars,
        };
        let query = parser.or(0)?;
        if let Some((at, _)) = parser.tokens.get(parser.next) {
            return Err(QueryError {
                position: *at,
                problem: "expected AND, OR or the end of the query".into(),
            });
        }
        Ok(query)
    }

    /// Whether a token holding `held` satisfies the query.
    pub fn allows(&self, held: &Permissions) -> bool {
        match self {
            Query::Name(name) => held.contains(name),
            Query::And(all) => all.iter().all(|q| q.allows(held)),
            Query::Or(any) => any.iter().any(|q| q.allows(held)),
        }
    }
}

/// Splits the query into words and parentheses, each with its character position.
fn lex(raw: &str) -> Result<Vec<(usize, Tok<'_>)>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = raw.char_indices().enumerate().peekable();
    while let Some((position, (start, c))) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => tokens.push((position, Tok::Open)),
            ')' => tokens.push((position, Tok::Close)),
            c if c.is_ascii() && (c.is_ascii_alphanumeric() || is_name_byte(c as u8)) => {
                let mut end = start + c.len_utf8();
                while let Some((_, (at, next))) = chars.peek() {
                    if next.is_ascii()
                        && (next.is_ascii_alphanumeric() || is_name_byte(*next as u8))
                    {
                        end = at + next.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &raw[start..end];
                let token = match word {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    name if is_name(name) => Tok::Name(name),
                    _ => {
                        return Err(QueryError {
                            position,
                            problem: format!(
                                "\"{}\" is neither AND, OR nor a permission name",
                                word.chars().take(70).collect::<String>()
                            ),
                        });
                    }
                };
                tokens.push((position, token));
            }
            other => {
                return Err(QueryError {
                    position,
                    problem: format!("unexpected character {other:?}"),
                });
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<(usize, Tok<'a>)>,
    next: usize,
    /// The query's length, for an error at its end.
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok<'_>> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(at, _)| *at)
    }

    fn or(&mut self, depth: usize) -> Result<Query, QueryError> {
        let mut any = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.next += 1;
            any.push(self.and(depth)?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Query::Or(any)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Query, QueryError> {
        let mut all = vec![self.atom(depth)?];
        while self.peek() == Some(&Tok::And) {
            self.next += 1;
            all.push(self.atom(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Query::And(all)
        })
    }

    fn atom(&mut self, depth: usize) -> Result<Query, QueryError> {
        let position = self.position();
        match self.tokens.get(self.next).map(|(_, t)| t.clone()) {
            Some(Tok::Name(name)) => {
                self.next += 1;
                Ok(Query::Name(name.into()))
            }
            Some(Tok::Open) => {
                if depth == MAX_DEPTH {
                    return Err(QueryError {
                        position,
                        problem: format!(
                            "the query nests more than {MAX_DEPTH} levels of parentheses"
                        ),
                    });
                }
                self.next += 1;
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err(QueryError {
                        position: self.position(),
                        problem: "expected ')'".into(),
                    });
                }
                self.next += 1;
                Ok(inner)
            }
            _ => Err(QueryError {
                position,
                problem: "expected a permission name or '('".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(names: &str) -> Permissions {
        Permissions::parse(names).unwrap()
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let q = Query::parse("a OR b AND c").unwrap();
        assert!(q.allows(&held("a")));
        assert!(!q.allows(&held("b")));
        assert!(q.allows(&held("b,c")));
        let q = Query::parse("documents.read AND (billing.write OR admin)").unwrap();
        assert!(q.allows(&held("documents.read,admin")));
        assert!(!q.allows(&held("documents.read")));
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("", 0),
            ("a AND", 5),
            ("a b", 2),
            ("(a OR b", 7),
            ("a OR )", 5),
            ("a AND Bad", 6),
            ("a & b", 2),
        ];
        for (raw, position) in cases {
            let err = Query::parse(raw).unwrap_err();
            assert_eq!(err.position, position, "{raw:?}: {err}");
        }
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let ten = format!("{}a{}", "(".repeat(10), ")".repeat(10));
        assert!(Query::parse(&ten).is_ok());
        let eleven = format!("{}a{}", "(".repeat(11), ")".repeat(11));
        assert_eq!(Query::parse(&eleven).unwrap_err().position, 10);
        let long = vec!["a"; 501].join(" OR ");
        assert!(long.len() > MAX_CHARS);
        assert!(Query::parse(&long).unwrap_err().problem.contains("1000"));
    }

    mod model {
        //! The parser and evaluator against a model: random expression trees, rendered to
        //! text with the parentheses precedence needs (and some it doesn't), evaluated by
        //! the tree itself and by a shunting-yard over the text's words.
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Tree {
            Name(&'static str),
            And(Vec<(Tree, bool)>),
            Or(Vec<(Tree, bool)>),
        }

        const NAMES: [&str; 4] = ["a", "b.read", "c:x", "d_1"];

        fn tree() -> impl Strategy<Value = Tree> {
            let leaf = proptest::sample::select(NAMES.to_vec()).prop_map(Tree::Name);
            leaf.prop_recursive(4, 24, 3, |inner| {
                let children = proptest::collection::vec((inner, any::<bool>()), 2..4);
                prop_oneof![
                    children.clone().prop_map(Tree::And),
                    children.prop_map(Tree::Or),
                ]
            })
        }

        fn render(tree: &Tree) -> String {
            match tree {
                Tree::Name(n) => n.to_string(),
                Tree::And(children) => join(children, " AND ", true),
                Tree::Or(children) => join(children, " OR ", false),
            }
        }

        /// Under AND, an OR child needs parentheses; anything may have them anyway.
        fn join(children: &[(Tree, bool)], op: &str, under_and: bool) -> String {
            children
                .iter()
                .map(|(child, extra)| {
                    let needs = under_and && matches!(child, Tree::Or(_));
                    let text = render(child);
                    if needs || *extra {
                        format!("({text})")
                    } else {
                        text
                    }
                })
                .collect::<Vec<_>>()
                .join(op)
        }

        fn truth(tree: &Tree, held: &[&str]) -> bool {
            match tree {
                Tree::Name(n) => held.contains(n),
                Tree::And(c) => c.iter().all(|(t, _)| truth(t, held)),
                Tree::Or(c) => c.iter().any(|(t, _)| truth(t, held)),
            }
        }

        /// A second evaluator, on the text: shunting-yard to postfix, AND above OR.
        fn shunting_yard(text: &str, held: &[&str]) -> bool {
            let spaced = text.replace('(', " ( ").replace(')', " ) ");
            let (mut out, mut ops): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
            let rank = |op: &str| if op == "AND" { 2 } else { 1 };
            for word in spaced.split_whitespace() {
                match word {
                    "(" => ops.push(word),
                    ")" => {
                        while let Some(op) = ops.pop() {
                            if op == "(" {
                                break;
                            }
                            out.push(op);
                        }
                    }
                    "AND" | "OR" => {
                        while let Some(&top) = ops.last() {
                            if top != "(" && rank(top) >= rank(word) {
                                out.push(ops.pop().unwrap());
                            } else {
                                break;
                            }
                        }
                        ops.push(word);
                    }
                    name => out.push(name),
                }
            }
            while let Some(op) = ops.pop() {
                out.push(op);
            }
            let mut stack = Vec::new();
            for word in out {
                match word {
                    "AND" | "OR" => {
                        let (r, l) = (stack.pop().unwrap(), stack.pop().unwrap());
                        stack.push(if word == "AND" { l && r } else { l || r });
                    }
                    name => stack.push(held.contains(&name)),
                }
            }
            stack.pop().unwrap()
        }

        proptest! {
            #[test]
            fn the_parser_agrees_with_the_model(
                tree in tree(),
                mask in 0u8..16,
            ) {
                let held: Vec<&str> = NAMES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                let text = render(&tree);
                let permissions = Permissions::parse(&held.join(",")).unwrap();
                let expected = truth(&tree, &held);
                prop_assert_eq!(shunting_yard(&text, &held), expected, "model on {}", text);
                match Query::parse(&text) {
                    Ok(query) => prop_assert_eq!(query.allows(&permissions), expected, "{}", text),
                    // Only too deep a nesting may be refused.
                    Err(e) => prop_assert!(e.problem.contains("levels"), "{}: {}", text, e),
                }
            }

            #[test]
            fn any_text_parses_or_is_refused_at_a_position_inside_it(text in "[a-z()ANDOR .:_ -]{0,40}") {
                if let Err(e) = Query::parse(&text) {
                    prop_assert!(e.position <= text.chars().count(), "{}: {}", text, e);
                }
            }
        }
    }
}
