//! Character-level reading of a configuration file: positions, blanks, comments, keys, quoted
//! strings and bare words. The grammar that strings these together is in `parse.rs`.

use std::path::Path;
use std::sync::Arc;

use super::value::Location;
use super::ConfigError;

/// A position in one file's text.
pub(super) struct Cursor {
    src: String,
    pos: usize,
    line: u32,
    column: u32,
    file: Arc<Path>,
}

/// Characters that end a bare value: `port: 4222, host: x` or `[a, b]` or `{ a: 1 }`.
fn ends_bare_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | ']' | '}')
}

/// Characters that end a bare key: `port: 1`, `port = 1`, `port 1`, `block {`.
fn ends_bare_key(c: char) -> bool {
    ends_bare_value(c) || matches!(c, ':' | '=' | '{' | '[' | '#' | '"' | '\'')
}

impl Cursor {
    /// Starts at the beginning of `src`, which was read from `file`.
    pub(super) fn new(src: String, file: Arc<Path>) -> Self {
        Cursor {
            src,
            pos: 0,
            line: 1,
            column: 1,
            file,
        }
    }

    /// The file being read.
    pub(super) fn file(&self) -> &Arc<Path> {
        &self.file
    }

    /// Where the next character is.
    pub(super) fn at(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
        }
    }

    /// A syntax error at the next character.
    pub(super) fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Syntax {
            at: self.at(),
            message: message.into(),
        }
    }

    /// The next character, without consuming it.
    pub(super) fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s)
    }

    /// Consumes and returns the next character.
    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// Whether a `#` or `//` comment starts here.
    fn at_comment(&self) -> bool {
        self.starts_with("#") || self.starts_with("//")
    }

    /// Skips spaces, tabs and a trailing comment on this line, but not the line break; returns
    /// whether anything was skipped.
    pub(super) fn skip_space(&mut self) -> bool {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(c) if c != '\n' && c.is_whitespace() => {
                    self.bump();
                }
                Some(_) if self.at_comment() => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                _ => return self.pos != start,
            }
        }
    }

    /// Skips blanks, comments, line breaks and the `,`/`;` separators between entries.
    pub(super) fn skip_separators(&mut self) {
        loop {
            self.skip_space();
            match self.peek() {
                Some('\n' | ',' | ';') => {
                    self.bump();
                }
                _ => return,
            }
        }
    }

    /// Whether the next character ends a value: end of input, line break, `,`, `;`, `]`, `}`.
    pub(super) fn at_value_end(&self) -> bool {
        self.peek()
            .is_none_or(|c| matches!(c, '\n' | ',' | ';' | ']' | '}'))
    }

    /// Reads a key: a bare word, or a quoted string.
    pub(super) fn read_key(&mut self) -> Result<String, ConfigError> {
        match self.peek() {
            Some('"' | '\'') => self.read_quoted(),
            _ => {
                let key = self.read_while(|c| !ends_bare_key(c));
                if key.is_empty() || key.starts_with("//") {
                    let found = self.peek().map_or("the end of the file".into(), describe);
                    return Err(self.error(format!("expected a setting name, found {found}")));
                }
                Ok(key)
            }
        }
    }

    /// Reads a bare value up to a blank, `,`, `;`, `]` or `}`.
    pub(super) fn read_bare(&mut self) -> String {
        self.read_while(|c| !ends_bare_value(c))
    }

    fn read_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        self.src[start..self.pos].to_string()
    }

    /// Reads a `"double"` (with `\` escapes) or `'single'` (verbatim) quoted string.
    pub(super) fn read_quoted(&mut self) -> Result<String, ConfigError> {
        let start = self.at();
        let quote = self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Err(ConfigError::Syntax {
                        at: start,
                        message: "string is not closed before the end of the line".into(),
                    })
                }
                Some(c) if Some(c) == quote => return Ok(out),
                Some('\\') if quote == Some('"') => out.push(self.read_escape()?),
                Some(c) => out.push(c),
            }
        }
    }

    // Escapes, as nats-server: \t \n \r \" \\ \/ \uXXXX \UXXXXXXXX
    fn read_escape(&mut self) -> Result<char, ConfigError> {
        let at = self.at();
        let c = self.bump();
        let digits = match c {
            Some('t') => return Ok('\t'),
            Some('n') => return Ok('\n'),
            Some('r') => return Ok('\r'),
            Some(c @ ('"' | '\\' | '/')) => return Ok(c),
            Some('u') => 4,
            Some('U') => 8,
            _ => {
                let shown = c.map_or("the end of the file".into(), describe);
                return Err(ConfigError::Syntax {
                    at,
                    message: format!("invalid escape after '\\': {shown}"),
                });
            }
        };
        let hex: String = (0..digits).filter_map(|_| self.bump()).collect();
        u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.len() == digits && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(char::from_u32)
            .ok_or(ConfigError::Syntax {
                at,
                message: format!("invalid unicode escape '\\{}{hex}'", c.unwrap_or('u')),
            })
    }
}

/// A character as an error message shows it.
pub(super) fn describe(c: char) -> String {
    match c {
        '\n' => "the end of the line".into(),
        c if c.is_control() => format!("{:?}", c),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(text: &str) -> Cursor {
        Cursor::new(text.into(), Arc::from(Path::new("t.conf")))
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let mut c = cursor("aé\nb");
        c.bump();
        c.bump();
        assert_eq!((c.at().line, c.at().column), (1, 3));
        c.bump();
        assert_eq!((c.at().line, c.at().column), (2, 1));
    }

    #[test]
    fn comments_are_skipped_up_to_the_line_break() {
        let mut c = cursor("  # note\n// other\n  x");
        c.skip_separators();
        assert_eq!(c.read_bare(), "x");
    }

    #[test]
    fn double_quoted_strings_resolve_escapes() {
        let mut c = cursor(r#""a\tb\"c\u00e9\U0001F600""#);
        assert_eq!(c.read_quoted().unwrap(), "a\tb\"cé😀");
    }

    #[test]
    fn single_quoted_strings_are_verbatim() {
        let mut c = cursor(r"'a\tb'");
        assert_eq!(c.read_quoted().unwrap(), r"a\tb");
    }

    #[test]
    fn bad_escapes_and_open_strings_are_errors() {
        for text in [r#""a\q""#, r#""\u12""#, r#""\uD800""#, "\"abc", "'abc\n'"] {
            let err = cursor(text).read_quoted().unwrap_err().to_string();
            assert!(err.starts_with("config file t.conf:1:"), "{text}: {err}");
        }
    }

    #[test]
    fn keys_end_at_separators_and_values_run_to_blanks() {
        let mut c = cursor("listen:127.0.0.1:4222 x");
        assert_eq!(c.read_key().unwrap(), "listen");
        c.bump();
        assert_eq!(c.read_bare(), "127.0.0.1:4222");
    }
}
