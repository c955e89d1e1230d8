//! Campaign templates rendered with bounded cost: every prompt and copy template (built-in
//! or a user's) renders here, with a step budget (minijinja fuel) and an output cap; a
//! user's template must also pass [`check_user_template`], which keeps out the constructs
//! that can grow memory faster than the step budget can see.

use std::io::Write;

use minijinja::Environment;
use minijinja::machinery::{Token, tokenize};

/// Steps (minijinja fuel) one template may take; the built-in ones take a few hundred.
pub const FUEL: u64 = 200_000;
/// Bytes one rendered template may produce.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// Bytes of a user's template file.
pub const MAX_SOURCE: usize = 256 * 1024;

/// Statements a user's template may use: conditions and loops over the data.
const STATEMENTS: [&str; 8] = [
    "if", "elif", "else", "endif", "for", "endfor", "raw", "endraw",
];
/// Filters that can only shrink text or grow it in proportion to the data.
const FILTERS: [&str; 24] = [
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "default",
    "d",
    "round",
    "int",
    "float",
    "abs",
    "length",
    "count",
    "first",
    "last",
    "join",
    "escape",
    "e",
    "safe",
    "string",
    "tojson",
    "sort",
    "unique",
    "reverse",
];
/// Functions: loops over a counted range (the step budget bounds them).
const FUNCTIONS: [&str; 1] = ["range"];

/// An environment with the step budget set.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env
}

/// A writer that refuses to grow past [`MAX_OUTPUT`].
struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other("output cap"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `source` with `ctx` within the step budget and the output cap.
pub fn render(source: &str, ctx: impl Into<minijinja::Value>) -> Result<String, minijinja::Error> {
    let env = environment();
    let template = env.template_from_str(source)?;
    let mut out = Capped(Vec::new());
    template.render_captured_to(ctx, &mut out).map_err(|e| {
        if e.kind() == minijinja::ErrorKind::WriteFailure {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!(
                    "the template's output is over {} KB, the limit",
                    MAX_OUTPUT >> 10
                ),
            )
        } else {
            e
        }
    })?;
    String::from_utf8(out.0)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string()))
}

/// Refuses a user's template that uses more than conditions, loops, the data's values
/// and a short list of filters: no `set`, `with`, macros, includes or string repetition,
/// which could build a value of gigabytes in a few steps. The message names the construct.
pub fn check_user_template(source: &str) -> Result<(), String> {
    if source.len() > MAX_SOURCE {
        return Err(format!("the template is over {} KB", MAX_SOURCE >> 10));
    }
    let mut previous: Option<Token<'_>> = None;
    let mut tokens = tokenize(source, false, Default::default()).peekable();
    while let Some(token) = tokens.next() {
        let (token, _) = token.map_err(|e| e.to_string())?;
        let next_is_call = matches!(tokens.peek(), Some(Ok((Token::ParenOpen, _))));
        match (&previous, &token) {
            (_, Token::Mul | Token::Pow) => {
                return Err("repeating text with `*` or `**` is not allowed".into());
            }
            (Some(Token::BlockStart), Token::Ident(name)) if !STATEMENTS.contains(name) => {
                return Err(format!(
                    "`{{% {} %}}` is not allowed; use if/elif/else and for",
                    rfm_core::bounded::value(name, 30)
                ));
            }
            (Some(Token::Pipe), Token::Ident(name)) if !FILTERS.contains(name) => {
                return Err(format!(
                    "the filter `{}` is not allowed; allowed: {}",
                    rfm_core::bounded::value(name, 30),
                    FILTERS.join(", ")
                ));
            }
            (Some(Token::Pipe | Token::Dot | Token::BlockStart), _) => {}
            (_, Token::Ident(name)) if next_is_call && !FUNCTIONS.contains(name) => {
                return Err(format!(
                    "calling `{}` is not allowed",
                    rfm_core::bounded::value(name, 30)
                ));
            }
            _ => {}
        }
        previous = Some(token);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_run_out_of_fuel_and_output_is_capped() {
        let looping =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let e = render(looping, ()).unwrap_err();
        assert_eq!(e.kind(), minijinja::ErrorKind::OutOfFuel, "{e}");
        let wide = "{% for i in range(1000) %}{{ s }}{% endfor %}";
        let e = render(wide, minijinja::context! { s => "y".repeat(1000) }).unwrap_err();
        assert!(format!("{e:#}").contains("over 256 KB"), "{e:#}");
        assert_eq!(
            render("Hi {{ n }}", minijinja::context! { n => 3 }).unwrap(),
            "Hi 3"
        );
    }

    #[test]
    fn user_templates_keep_to_the_safe_subset() {
        for ok in [
            "Dear {{ first_name }}, {{ customers }} of you {% if offers %}{{ offers | join(', ') }}{% endif %}",
            "{% for p in problems %}- {{ p | upper }}{% endfor %}{{ a ~ b }}",
        ] {
            assert_eq!(check_user_template(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("{{ 'x' * 100000000 }}", "`*`"),
            ("{% set a = x ~ x %}", "set"),
            ("{% macro m() %}{% endmacro %}", "macro"),
            ("{{ x | center(1000000000) }}", "center"),
            ("{{ lipsum(1000000) }}", "lipsum"),
            ("{% include 'x' %}", "include"),
        ] {
            let e = check_user_template(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
