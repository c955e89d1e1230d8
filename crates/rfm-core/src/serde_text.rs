//! Options that settings files, environment variables, flags and API fields all write as
//! text.

/// Serde through the type's `FromStr` and `Display`, so that settings files, environment
/// variables, flags and API fields accept the same words with the same messages.
#[macro_export]
macro_rules! serde_as_text {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    };
}
