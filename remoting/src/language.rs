//! `LanguageCode`: which client library sent a command (spec §3, `language`).

/// The sender's implementation language. JSON headers carry the name, binary headers the
/// code byte. Unknown names and codes decode as [`LanguageCode::Other`], as the spec asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LanguageCode {
    /// `JAVA`, 0.
    #[default]
    Java,
    /// `CPP`, 1.
    Cpp,
    /// `DOTNET`, 2.
    Dotnet,
    /// `PYTHON`, 3.
    Python,
    /// `DELPHI`, 4.
    Delphi,
    /// `ERLANG`, 5.
    Erlang,
    /// `RUBY`, 6.
    Ruby,
    /// `OTHER`, 7.
    Other,
    /// `HTTP`, 8.
    Http,
    /// `GO`, 9.
    Go,
    /// `PHP`, 10.
    Php,
    /// `OMS`, 11.
    Oms,
    /// `RUST`, 12.
    Rust,
    /// `NODE_JS`, 13 (5.x only).
    NodeJs,
}

/// Every language in code order; the index is the wire code.
const ALL: [(LanguageCode, &str); 14] = [
    (LanguageCode::Java, "JAVA"),
    (LanguageCode::Cpp, "CPP"),
    (LanguageCode::Dotnet, "DOTNET"),
    (LanguageCode::Python, "PYTHON"),
    (LanguageCode::Delphi, "DELPHI"),
    (LanguageCode::Erlang, "ERLANG"),
    (LanguageCode::Ruby, "RUBY"),
    (LanguageCode::Other, "OTHER"),
    (LanguageCode::Http, "HTTP"),
    (LanguageCode::Go, "GO"),
    (LanguageCode::Php, "PHP"),
    (LanguageCode::Oms, "OMS"),
    (LanguageCode::Rust, "RUST"),
    (LanguageCode::NodeJs, "NODE_JS"),
];

impl LanguageCode {
    /// The wire code used by binary headers.
    pub fn code(self) -> u8 {
        ALL.iter()
            .position(|(language, _)| *language == self)
            .and_then(|index| u8::try_from(index).ok())
            .unwrap_or(7)
    }

    /// The Java enum name used by JSON headers.
    pub fn name(self) -> &'static str {
        ALL.iter().find(|(language, _)| *language == self).map_or("OTHER", |(_, name)| name)
    }

    /// The language for a wire code; unknown codes are [`LanguageCode::Other`].
    pub fn from_code(code: u8) -> Self {
        ALL.get(usize::from(code)).map_or(Self::Other, |(language, _)| *language)
    }

    /// The language for a Java enum name (exact, case-sensitive as fastjson matches it);
    /// unknown names are [`LanguageCode::Other`].
    pub fn from_name(name: &str) -> Self {
        ALL.iter().find(|(_, known)| *known == name).map_or(Self::Other, |(language, _)| *language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for (index, (language, name)) in ALL.iter().enumerate() {
            assert_eq!(usize::from(language.code()), index);
            assert_eq!(language.name(), *name);
            assert_eq!(LanguageCode::from_code(language.code()), *language);
            assert_eq!(LanguageCode::from_name(name), *language);
        }
    }

    #[test]
    fn unknown_values_are_other() {
        assert_eq!(LanguageCode::from_code(200), LanguageCode::Other);
        assert_eq!(LanguageCode::from_name("COBOL"), LanguageCode::Other);
        assert_eq!(LanguageCode::from_name("java"), LanguageCode::Other);
    }
}
