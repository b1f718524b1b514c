//! The lexer and recursive-descent parser for the label selector string
//! syntax, shaped after upstream's so that odd inputs (`k in (,a)`, `in in
//! (in)`, `k=`) parse, and fail, exactly as they do there, with the same text.

use std::collections::BTreeSet;

use super::label::{key_problem, Operator, Requirement, SelectorError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Where the parser is: in `Values` the keywords `in` and `notin` are plain
/// identifiers, so they can be keys and values too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn keyword(literal: &str) -> Option<Token> {
    Some(match literal {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(byte: u8) -> bool {
    matches!(byte, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens, ending with exactly one `EndOfString`. Like
/// upstream, a NUL byte ends the input.
fn scan(input: &str) -> Vec<(Token, &str)> {
    let bytes = input.as_bytes();
    let mut position = 0;
    let mut tokens = Vec::new();
    loop {
        while position < bytes.len() && is_whitespace(bytes[position]) {
            position += 1;
        }
        if position >= bytes.len() || bytes[position] == 0 {
            tokens.push((Token::EndOfString, ""));
            return tokens;
        }
        let start = position;
        if is_special_symbol(bytes[position]) {
            // Longest run of symbols that is still a token: `!=` over `!`.
            let mut end = start + 1;
            while end < bytes.len()
                && is_special_symbol(bytes[end])
                && keyword(&input[start..=end]).is_some()
            {
                end += 1;
            }
            let literal = &input[start..end];
            let token = keyword(literal).expect("every single symbol is a token");
            tokens.push((token, literal));
            position = end;
        } else {
            let mut end = start;
            while end < bytes.len()
                && bytes[end] != 0
                && !is_special_symbol(bytes[end])
                && !is_whitespace(bytes[end])
            {
                end += 1;
            }
            let literal = &input[start..end];
            tokens.push((keyword(literal).unwrap_or(Token::Identifier), literal));
            // Upstream swallows the NUL that ends an identifier.
            position = if end < bytes.len() && bytes[end] == 0 {
                end + 1
            } else {
                end
            };
        }
    }
}

struct Parser<'a> {
    tokens: Vec<(Token, &'a str)>,
    position: usize,
}

/// Parses a selector string into its requirements, in the order written.
pub(super) fn parse(input: &str) -> Result<Vec<Requirement>, SelectorError> {
    let mut parser = Parser {
        tokens: scan(input),
        position: 0,
    };
    parser.parse()
}

impl<'a> Parser<'a> {
    fn item(&self, context: Context) -> (Token, &'a str) {
        let last = self.tokens.len() - 1;
        let (token, literal) = self.tokens[self.position.min(last)];
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        self.item(context)
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.item(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(SelectorError::Requirement)?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(SelectorError::Syntax(format!(
                                    "found '{literal}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return Requirement::with_valid_key(key.to_string(), operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::with_valid_key(key.to_string(), operator, values.into_iter().collect())
    }

    /// Reads `key` or `!key`; the operator is known already when the key is
    /// followed by the end or a comma (exists) or preceded by `!`.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        if let Some(problem) = key_problem(literal, "<nil>") {
            return Err(problem);
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        })
    }

    /// Reads `(a,b,...)`; empty entries (`()`, `(,a)`, `(a,,b)`) stand for
    /// the empty value.
    fn parse_values(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, String> {
        let mut values = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal.to_string());
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.insert(String::new());
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// Reads the value after `=`, `==`, `!=`, `>` or `<`; nothing there means
    /// the empty value.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(BTreeSet::from([literal.to_string()]))
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{scan, Token};

    #[test]
    fn scan_prefers_the_longest_symbol_token() {
        let cases: [(&str, &[(Token, &str)]); 5] = [
            (
                "a!=b",
                &[
                    (Token::Identifier, "a"),
                    (Token::NotEquals, "!="),
                    (Token::Identifier, "b"),
                ],
            ),
            (
                "a===b",
                &[
                    (Token::Identifier, "a"),
                    (Token::DoubleEquals, "=="),
                    (Token::Equals, "="),
                    (Token::Identifier, "b"),
                ],
            ),
            ("!(", &[(Token::DoesNotExist, "!"), (Token::OpenPar, "(")]),
            (
                " x notin ( in )",
                &[
                    (Token::Identifier, "x"),
                    (Token::NotIn, "notin"),
                    (Token::OpenPar, "("),
                    (Token::In, "in"),
                    (Token::ClosedPar, ")"),
                ],
            ),
            (
                "a\0b",
                &[(Token::Identifier, "a"), (Token::Identifier, "b")],
            ),
        ];
        for (input, expected) in cases {
            let mut tokens = scan(input);
            assert_eq!(
                tokens.pop(),
                Some((Token::EndOfString, "")),
                "input {input:?}"
            );
            assert_eq!(tokens, expected, "input {input:?}");
        }
    }
}
