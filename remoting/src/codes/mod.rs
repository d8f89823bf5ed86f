//! Request codes (spec §6.4) and response codes (spec §7) as named constants.
//!
//! Each table is written once, in `code_table!`, which generates the constants and the
//! reverse lookup `name(code)`.

mod request;
mod response;

pub use request::RequestCode;
pub use response::ResponseCode;

/// Declares a newtype over `i32` with one constant per `NAME = value` line and a `name()`
/// lookup. Values must be unique (the generated `match` rejects duplicates at compile time).
macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $type:ident {
            $( $(#[$doc:meta])* $name:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $type(pub i32);

        impl $type {
            $( $(#[$doc])* pub const $name: Self = Self($value); )*

            /// Every named code, in declaration order.
            pub const ALL: &'static [Self] = &[$( Self::$name, )*];

            /// The Java constant name for `code`, if it has one.
            pub fn name(code: i32) -> Option<&'static str> {
                match code {
                    $( $value => Some(stringify!($name)), )*
                    _ => None,
                }
            }

            /// The wire value.
            pub fn code(self) -> i32 {
                self.0
            }
        }

        impl From<$type> for i32 {
            fn from(code: $type) -> i32 {
                code.0
            }
        }

        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match Self::name(self.0) {
                    Some(name) => write!(f, "{name}({})", self.0),
                    None => write!(f, "{}", self.0),
                }
            }
        }
    };
}
pub(crate) use code_table;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for code in RequestCode::ALL {
            let name = RequestCode::name(code.0).unwrap();
            assert!(!name.is_empty());
        }
        assert_eq!(RequestCode::name(310), Some("SEND_MESSAGE_V2"));
        assert_eq!(RequestCode::name(200_050), Some("POP_MESSAGE"));
        assert_eq!(RequestCode::name(9999), None);
        assert_eq!(ResponseCode::name(19), Some("PULL_NOT_FOUND"));
        assert_eq!(ResponseCode::name(-1006), Some("RPC_TIME_OUT"));
        assert_eq!(RequestCode::SEND_MESSAGE.to_string(), "SEND_MESSAGE(10)");
        assert_eq!(i32::from(ResponseCode::SYSTEM_BUSY), 2);
    }
}
