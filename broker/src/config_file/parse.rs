//! The configuration-file grammar, from text to a [`Map`] of [`Node`]s.
//!
//! ```text
//! file    = { sep } { entry { sep } }
//! entry   = key ( ":" | "=" | blank ) value      port: 4222 / port = 4222 / port 4222
//!         | key [ ":" | "=" ] map                 authorization { ... }
//!         | "include" blank ( string | word )     include "auth.conf"
//! value   = "double" | 'single' | word | array | map | "$" name
//! array   = "[" { sep } [ value { sep value } ] { sep } "]"
//! map     = "{" { sep } { entry { sep } } "}"
//! sep     = line break | "," | ";"              (blanks, # and // comments anywhere)
//! ```

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lexer::{describe, Cursor};
use super::value::{classify, Entry, Location, Map, Node, Value};
use super::ConfigError;

/// Deepest nesting of arrays and maps, so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 64;
/// Deepest chain of includes, which also stops an include cycle.
const MAX_INCLUDES: usize = 16;

/// Looks up environment variables for `$NAME` when the file does not define `NAME`.
pub(super) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// Reads the file at `path`, following its includes.
pub(super) fn parse_file(path: &Path, env: Env<'_>) -> Result<Map, ConfigError> {
    let text = read(path)?;
    parse_text(text, Arc::from(path), env)
}

/// Parses `text` as if read from `file`; includes are read relative to `file`'s directory.
pub(super) fn parse_text(text: String, file: Arc<Path>, env: Env<'_>) -> Result<Map, ConfigError> {
    let mut parser = Parser {
        cursor: Cursor::new(text, file),
        env,
        scopes: vec![Map::default()],
        nesting: 0,
        includes: 0,
    };
    parser.entries(None)?;
    Ok(parser.scopes.pop().unwrap_or_default())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    decode(bytes, Arc::from(path))
}

/// The text of a file, or an error at the first byte that is not UTF-8.
pub(super) fn decode(bytes: Vec<u8>, file: Arc<Path>) -> Result<String, ConfigError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ConfigError::Syntax {
            at: Location {
                file,
                line: u32::try_from(line).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
            },
            message: "the file is not valid UTF-8".into(),
        }
    })
}

struct Parser<'e> {
    cursor: Cursor,
    env: Env<'e>,
    /// The maps being filled, outermost first: `$NAME` looks from the innermost outwards.
    scopes: Vec<Map>,
    nesting: usize,
    includes: usize,
}

impl Parser<'_> {
    /// Parses entries into the innermost scope until the `}` of the block `opened` there, or
    /// until the end of the file if `None`.
    fn entries(&mut self, opened: Option<Location>) -> Result<(), ConfigError> {
        loop {
            self.cursor.skip_separators();
            match (self.cursor.peek(), &opened) {
                (None, None) => return Ok(()),
                (None, Some(opened)) => {
                    return Err(self.cursor.error(format!(
                        "expected '}}' to close the block opened at line {}",
                        opened.line
                    )))
                }
                (Some('}'), Some(_)) => {
                    self.cursor.bump();
                    return Ok(());
                }
                _ => {}
            }
            let key = self.entry()?;
            self.cursor.skip_space();
            if !self.cursor.at_value_end() {
                return Err(self.cursor.error(format!(
                    "expected a line break, ',' or ';' after the value of '{key}'"
                )));
            }
        }
    }

    /// Parses one entry into the innermost scope; returns its key.
    fn entry(&mut self) -> Result<String, ConfigError> {
        let key_at = self.cursor.at();
        let key = self.cursor.read_key()?;
        let spaced = self.cursor.skip_space();
        match self.cursor.peek() {
            Some(':' | '=') => {
                self.cursor.bump();
                self.cursor.skip_space();
            }
            Some('{' | '[') => {}
            _ if self.cursor.at_value_end() => {}
            _ if spaced && key.eq_ignore_ascii_case("include") => {
                self.include()?;
                return Ok(key);
            }
            Some(c) if !spaced => {
                return Err(self.cursor.error(format!(
                    "expected ':', '=' or a space after '{key}', found {}",
                    describe(c)
                )))
            }
            _ => {}
        }
        if self.cursor.at_value_end() {
            return Err(self.cursor.error(format!("expected a value after '{key}'")));
        }
        let node = self.value()?;
        self.scope().entries.push(Entry {
            key: key.clone(),
            key_at,
            node,
            used_as_variable: false,
        });
        Ok(key)
    }

    /// The innermost map being filled (there is always one: the file's).
    fn scope(&mut self) -> &mut Map {
        if self.scopes.is_empty() {
            self.scopes.push(Map::default());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    fn value(&mut self) -> Result<Node, ConfigError> {
        let at = self.cursor.at();
        let (value, text) = match self.cursor.peek() {
            Some('"' | '\'') => {
                let s = self.cursor.read_quoted()?;
                (Value::String(s.clone()), s)
            }
            Some('[') => (self.nested(Self::array)?, String::new()),
            Some('{') => (self.nested(Self::map)?, String::new()),
            Some('$') => return self.variable(),
            _ => {
                let word = self.cursor.read_bare();
                (classify(&word), word)
            }
        };
        Ok(Node { value, at, text })
    }

    fn nested(
        &mut self,
        f: fn(&mut Self) -> Result<Value, ConfigError>,
    ) -> Result<Value, ConfigError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.cursor.error("arrays and blocks are nested too deeply"));
        }
        self.nesting += 1;
        let value = f(self);
        self.nesting -= 1;
        value
    }

    fn map(&mut self) -> Result<Value, ConfigError> {
        let opened = self.cursor.at();
        self.cursor.bump();
        self.scopes.push(Map::default());
        let result = self.entries(Some(opened));
        let map = self.scopes.pop().unwrap_or_default();
        result.map(|()| Value::Map(map))
    }

    fn array(&mut self) -> Result<Value, ConfigError> {
        let opened = self.cursor.at();
        self.cursor.bump();
        let mut items = Vec::new();
        loop {
            self.cursor.skip_separators();
            match self.cursor.peek() {
                None => {
                    return Err(self.cursor.error(format!(
                        "expected ']' to close the array opened at line {}",
                        opened.line
                    )))
                }
                Some(']') => {
                    self.cursor.bump();
                    return Ok(Value::Array(items));
                }
                Some('}') => return Err(self.cursor.error("expected a value or ']', found '}'")),
                Some(_) => items.push(self.value()?),
            }
            self.cursor.skip_space();
            if !self.cursor.at_value_end() || self.cursor.peek() == Some('}') {
                return Err(self.cursor.error("expected ',' or ']' after an array item"));
            }
        }
    }

    // $NAME: a key defined earlier in this block or an enclosing one, else the environment.
    // An unquoted `$2a$...` is not a variable but a bcrypt hash, as nats-server reads it.
    fn variable(&mut self) -> Result<Node, ConfigError> {
        let at = self.cursor.at();
        self.cursor.bump();
        let name = self.cursor.read_bare();
        if name.is_empty() {
            return Err(self.cursor.error("expected a variable name after '$'"));
        }
        if name.starts_with("2a$") {
            let text = format!("${name}");
            return Ok(Node {
                value: Value::String(text.clone()),
                at,
                text,
            });
        }
        let defined = self
            .scopes
            .iter_mut()
            .rev()
            .find_map(|m| m.take_variable(&name));
        if let Some(node) = defined {
            return Ok(Node { at, ..node });
        }
        match (self.env)(&name) {
            Some(text) => Ok(Node {
                value: classify(&text),
                at,
                text,
            }),
            None => Err(ConfigError::Syntax {
                at,
                message: format!(
                    "variable '{name}' is not defined: define it earlier in the file or set it in the environment"
                ),
            }),
        }
    }

    // include "file": its entries join the current block; the path is relative to this file.
    fn include(&mut self) -> Result<(), ConfigError> {
        let at = self.cursor.at();
        let name = match self.cursor.peek() {
            Some('"' | '\'') => self.cursor.read_quoted()?,
            _ if self.cursor.at_value_end() => {
                return Err(self.cursor.error("expected a file name after 'include'"))
            }
            _ => self.cursor.read_bare(),
        };
        if self.includes >= MAX_INCLUDES {
            return Err(ConfigError::Syntax {
                at,
                message: "includes are nested too deeply: does a file include itself?".into(),
            });
        }
        let dir = self.cursor.file().parent().map(Path::to_path_buf);
        let path: PathBuf = dir.unwrap_or_default().join(name);
        let text = read(&path).map_err(|e| match e {
            ConfigError::Read { path, error } => ConfigError::Syntax {
                at,
                message: format!("cannot read included file {}: {error}", path.display()),
            },
            other => other,
        })?;
        let outer = mem::replace(&mut self.cursor, Cursor::new(text, Arc::from(path)));
        self.includes += 1;
        let result = self.entries(None);
        self.includes -= 1;
        self.cursor = outer;
        result
    }
}
