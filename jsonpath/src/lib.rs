//! The value language of Ceilometer's definition files (`meters.yaml`'s values,
//! `event_definitions.yaml`'s trait `fields`): jsonpath-rw with the jsonpath-rw-ext
//! extensions, as Ceilometer uses it — not RFC 9535. Shared by the declarative
//! notification handler (a plugin) and the host's event converter.
//!
//! - paths: `$.payload.size`, `payload.size` (from the root), `ctxt.user`,
//!   `.[*]` / `[*]` (every element; applied to an object, the object itself),
//!   `.*` (every value of an object), `[0]`, `[-1]`, `..name` (any depth);
//! - filters: `[?(@.name='cpu.frequency')]`, `[?key=image_id]`, with
//!   `= == != < <= > >=` against a quoted string, a number or a bare word;
//! - functions after a dot, in backquotes: `` `split(#, 0, 1)` `` (Python's
//!   `value.split('#', 1)[0]`), `` `sub(/regex/, replacement)` ``, `` `len` ``,
//!   `` `str()` ``;
//! - arithmetic `+ - * /` between paths and literals (`'text'`, `"text"`, numbers):
//!   numbers compute, strings concatenate with `+`; two paths combine element by
//!   element when they match as many values; a type mismatch yields nothing;
//! - `a|b`: the matches of `a`, then those of `b` (callers take the first non-null),
//!   with parentheses for grouping; after a dot, `x.(a|b)` applies the group to each
//!   match of `x`.

use std::fmt;

use std::borrow::Cow;

use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A path from the root.
    Path(Vec<Step>),
    /// A string literal.
    Str(String),
    /// A number literal.
    Num(f64),
    /// Arithmetic.
    Op(Box<Expr>, char, Box<Expr>),
    /// `a|b`.
    Union(Box<Expr>, Box<Expr>),
}

/// One step of a path.
#[derive(Debug, Clone)]
pub enum Step {
    /// `.name`
    Field(String),
    /// `.*`: every value of an object (every element of a list).
    AllFields,
    /// `[*]`
    All,
    /// `[n]`
    Index(i64),
    /// `..name`
    Descendant(String),
    /// `[?(@.a.b op value)]`
    Filter(Vec<String>, Cmp, Value),
    /// `` `fn(…)` ``
    Func(Func),
    /// `.(a|b)`: an expression applied to each match so far (gnocchi_resources.yaml's
    /// `resource_metadata.(instance_host|host)`).
    Group(Box<Expr>),
}

/// Filter comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Functions.
#[derive(Debug, Clone)]
pub enum Func {
    /// `split(sep, segment, max_split)`
    Split(String, i64, i64),
    /// `sub(/regex/, replacement)`
    Sub(fancy_regex::Regex, String),
    /// `len`
    Len,
    /// `str()`
    Str,
}

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Character offset.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.at + 1, self.message)
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser { s: &chars, i: 0 };
    let e = p.union()?;
    p.ws();
    if p.i < chars.len() {
        return Err(p.err(format!("unexpected `{}`", chars[p.i])));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            at: self.i,
            message: message.into(),
        }
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(format!("expected `{c}`")))
        }
    }

    fn union(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.sum()?;
        loop {
            self.ws();
            if !self.eat('|') {
                return Ok(left);
            }
            let right = self.sum()?;
            left = Expr::Union(Box::new(left), Box::new(right));
        }
    }
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.product()?;
        loop {
            self.ws();
            let op = match self.peek() {
                Some(c @ ('+' | '-')) => c,
                _ => return Ok(left),
            };
            self.i += 1;
            let right = self.product()?;
            left = Expr::Op(Box::new(left), op, Box::new(right));
        }
    }
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.primary()?;
        loop {
            self.ws();
            let op = match self.peek() {
                Some(c @ ('*' | '/')) => c,
                _ => return Ok(left),
            };
            self.i += 1;
            let right = self.primary()?;
            left = Expr::Op(Box::new(left), op, Box::new(right));
        }
    }
    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("the expression ends too early")),
            Some('(') => {
                self.i += 1;
                let e = self.union()?;
                self.ws();
                self.expect(')')?;
                Ok(e)
            }
            Some(q @ ('\'' | '"')) => {
                self.i += 1;
                Ok(Expr::Str(self.quoted(q)?))
            }
            Some(c) if c.is_ascii_digit() => Ok(Expr::Num(self.number()?)),
            Some('$') => {
                self.i += 1;
                Ok(Expr::Path(self.steps()?))
            }
            Some(c) if is_name_char(c) => {
                let first = self.name()?;
                let mut steps = vec![Step::Field(first)];
                steps.extend(self.steps()?);
                Ok(Expr::Path(steps))
            }
            Some(c) => Err(self.err(format!("unexpected `{c}`"))),
        }
    }
    fn quoted(&mut self, q: char) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unclosed quote")),
                Some(c) if c == q => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.i += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.i += 1;
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
    fn number(&mut self) -> Result<f64, ParseError> {
        let start = self.i;
        if self.peek() == Some('-') {
            self.i += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.i += 1;
        }
        let text: String = self.s[start..self.i].iter().collect();
        text.parse().map_err(|_| ParseError {
            at: start,
            message: format!("`{text}` is not a number"),
        })
    }
    fn name(&mut self) -> Result<String, ParseError> {
        let start = self.i;
        while self.peek().is_some_and(is_name_char) {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err("expected a field name"));
        }
        Ok(self.s[start..self.i].iter().collect())
    }
    fn steps(&mut self) -> Result<Vec<Step>, ParseError> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.i += 1;
                    match self.peek() {
                        Some('.') => {
                            self.i += 1;
                            steps.push(Step::Descendant(self.name()?));
                        }
                        Some('*') => {
                            self.i += 1;
                            steps.push(Step::AllFields);
                        }
                        Some('[') => steps.push(self.bracket()?),
                        Some('`') => steps.push(Step::Func(self.func()?)),
                        Some('(') => {
                            self.i += 1;
                            let e = self.union()?;
                            self.ws();
                            self.expect(')')?;
                            steps.push(Step::Group(Box::new(e)));
                        }
                        Some('\'' | '"') => {
                            let q = self.s[self.i];
                            self.i += 1;
                            steps.push(Step::Field(self.quoted(q)?));
                        }
                        _ => steps.push(Step::Field(self.name()?)),
                    }
                }
                Some('[') => steps.push(self.bracket()?),
                _ => return Ok(steps),
            }
        }
    }
    fn bracket(&mut self) -> Result<Step, ParseError> {
        self.expect('[')?;
        self.ws();
        let step = match self.peek() {
            Some('*') => {
                self.i += 1;
                Step::All
            }
            Some('?') => {
                self.i += 1;
                self.ws();
                let paren = self.eat('(');
                let f = self.filter()?;
                self.ws();
                if paren {
                    self.expect(')')?;
                }
                f
            }
            Some(q @ ('\'' | '"')) => {
                self.i += 1;
                Step::Field(self.quoted(q)?)
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let n = self.number()?;
                if n.fract() != 0.0 {
                    return Err(self.err("an index must be a whole number"));
                }
                Step::Index(n as i64)
            }
            _ => {
                return Err(self.err("expected `*`, an index, a quoted name or `?filter` in `[…]`"))
            }
        };
        self.ws();
        self.expect(']')?;
        Ok(step)
    }
    fn filter(&mut self) -> Result<Step, ParseError> {
        self.ws();
        if self.eat('@') {
            self.expect('.')?;
        }
        let mut path = vec![self.name()?];
        while self.eat('.') {
            path.push(self.name()?);
        }
        self.ws();
        let cmp = match (self.peek(), self.s.get(self.i + 1).copied()) {
            (Some('='), Some('='))
            | (Some('!'), Some('='))
            | (Some('<'), Some('='))
            | (Some('>'), Some('=')) => {
                let c = self.s[self.i];
                self.i += 2;
                match c {
                    '=' => Cmp::Eq,
                    '!' => Cmp::Ne,
                    '<' => Cmp::Le,
                    _ => Cmp::Ge,
                }
            }
            (Some('='), _) => {
                self.i += 1;
                Cmp::Eq
            }
            (Some('<'), _) => {
                self.i += 1;
                Cmp::Lt
            }
            (Some('>'), _) => {
                self.i += 1;
                Cmp::Gt
            }
            _ => return Err(self.err("expected a comparison (=, ==, !=, <, <=, >, >=)")),
        };
        self.ws();
        let value = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.i += 1;
                Value::String(self.quoted(q)?)
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                serde_json::Number::from_f64(self.number()?)
                    .map(Value::Number)
                    .ok_or_else(|| self.err("not a finite number"))?
            }
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c != ']' && c != ')' && !c.is_whitespace())
                {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(self.err("expected a value to compare with"));
                }
                Value::String(self.s[start..self.i].iter().collect())
            }
        };
        Ok(Step::Filter(path, cmp, value))
    }
    fn func(&mut self) -> Result<Func, ParseError> {
        self.expect('`')?;
        let start = self.i;
        while self.peek().is_some_and(|c| c != '`') {
            self.i += 1;
        }
        let body: String = self.s[start..self.i].iter().collect();
        self.expect('`')?;
        let at = start;
        let bad = |m: String| ParseError { at, message: m };
        let body = body.trim();
        if body == "len" {
            return Ok(Func::Len);
        }
        if body == "str()" || body == "str" {
            return Ok(Func::Str);
        }
        if let Some(args) = body
            .strip_prefix("split(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let parts: Vec<&str> = args.rsplitn(3, ',').collect();
            let [max, segment, sep] = parts[..] else {
                return Err(bad(format!(
                    "`{body}`: write split(separator, segment, max_split)"
                )));
            };
            let num = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("`{body}`: `{}` is not a whole number", s.trim())))
            };
            return Ok(Func::Split(sep.trim().to_owned(), num(segment)?, num(max)?));
        }
        if let Some(args) = body.strip_prefix("sub(").and_then(|r| r.strip_suffix(')')) {
            let rest = args
                .trim_start()
                .strip_prefix('/')
                .ok_or_else(|| bad(format!("`{body}`: write sub(/regex/, replacement)")))?;
            let end = rest
                .rfind('/')
                .ok_or_else(|| bad(format!("`{body}`: the regex is not closed with `/`")))?;
            let re =
                fancy_regex::Regex::new(&rest[..end]).map_err(|e| bad(format!("`{body}`: {e}")))?;
            let repl = rest[end + 1..]
                .trim_start()
                .strip_prefix(',')
                .ok_or_else(|| bad(format!("`{body}`: expected `,` after the regex")))?;
            return Ok(Func::Sub(re, repl.trim().to_owned()));
        }
        Err(bad(format!(
            "unknown function `{body}` (known: split, sub, len, str)"
        )))
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl Expr {
    /// Every match, in order.
    pub fn find(&self, root: &Value) -> Vec<Value> {
        self.find_traced::<()>(root)
            .into_iter()
            .map(|((), v)| v)
            .collect()
    }

    /// Every match with where it was found, as jsonpath-rw writes a match's full
    /// path (`payload.list.[0].name`; a literal's or an expression's path is empty).
    ///
    /// ```
    /// let e = ceilo_jsonpath::parse("payload.thing.*").unwrap();
    /// let doc = serde_json::json!({"payload": {"thing": {"bar": 12}}});
    /// assert_eq!(e.find_with_paths(&doc), [("payload.thing.bar".to_owned(), serde_json::json!(12))]);
    /// ```
    pub fn find_with_paths(&self, root: &Value) -> Vec<(String, Value)> {
        self.find_traced::<String>(root)
    }

    fn find_traced<T: Trail>(&self, root: &Value) -> Vec<(T, Value)> {
        match self {
            Expr::Str(_) | Expr::Num(_) | Expr::Op(..) => self
                .values(root)
                .into_iter()
                .map(|v| (T::default(), v))
                .collect(),
            Expr::Path(steps) => {
                let mut cur: Vec<(T, Cow<'_, Value>)> = vec![(T::default(), Cow::Borrowed(root))];
                for step in steps {
                    let mut next = Vec::new();
                    for (t, v) in &cur {
                        match v {
                            Cow::Borrowed(b) => next.extend(apply(step, t, b)),
                            // A function's result: what follows it is owned too.
                            Cow::Owned(o) => next.extend(
                                apply(step, t, o)
                                    .into_iter()
                                    .map(|(t, x)| (t, Cow::Owned(x.into_owned()))),
                            ),
                        }
                    }
                    cur = next;
                }
                cur.into_iter().map(|(t, v)| (t, v.into_owned())).collect()
            }
            Expr::Union(a, b) => {
                let mut out = a.find_traced(root);
                out.extend(b.find_traced(root));
                out
            }
        }
    }

    /// The values of a literal or an arithmetic expression.
    fn values(&self, root: &Value) -> Vec<Value> {
        match self {
            Expr::Str(s) => vec![Value::String(s.clone())],
            Expr::Num(n) => vec![num(*n)],
            Expr::Op(a, op, b) => {
                let (l, r) = (a.find(root), b.find(root));
                let pairs: Vec<(&Value, &Value)> = match (a.is_literal(), b.is_literal()) {
                    (false, false) if !l.is_empty() && l.len() == r.len() => {
                        l.iter().zip(r.iter()).collect()
                    }
                    (false, false) => return Vec::new(),
                    (false, true) => l.iter().map(|x| (x, &r[0])).collect(),
                    (true, false) => r.iter().map(|y| (&l[0], y)).collect(),
                    (true, true) => vec![(&l[0], &r[0])],
                };
                // A type mismatch anywhere gives nothing, as in jsonpath-rw-ext.
                pairs
                    .into_iter()
                    .map(|(x, y)| arith(x, *op, y))
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default()
            }
            Expr::Path(_) | Expr::Union(..) => self.find(root),
        }
    }

    /// The first non-null match.
    pub fn first(&self, root: &Value) -> Option<Value> {
        self.find(root).into_iter().find(|v| !v.is_null())
    }

    fn is_literal(&self) -> bool {
        matches!(self, Expr::Str(_) | Expr::Num(_))
    }
}

/// Where a match is: its full path, or nothing when nobody asked (no cost).
trait Trail: Clone + Default {
    fn child(&self, name: &str) -> Self;
    fn index(&self, i: usize) -> Self;
    /// `self` followed by a trail found below it.
    fn join(&self, below: &Self) -> Self;
}

impl Trail for () {
    fn child(&self, _: &str) {}
    fn index(&self, _: usize) {}
    fn join(&self, _: &()) {}
}

impl Trail for String {
    fn child(&self, name: &str) -> String {
        if self.is_empty() {
            name.to_owned()
        } else {
            format!("{self}.{name}")
        }
    }
    fn index(&self, i: usize) -> String {
        self.child(&format!("[{i}]"))
    }
    fn join(&self, below: &String) -> String {
        if below.is_empty() {
            self.clone()
        } else {
            self.child(below)
        }
    }
}

fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn arith(x: &Value, op: char, y: &Value) -> Option<Value> {
    match (x, y) {
        (Value::String(a), Value::String(b)) if op == '+' => Some(Value::String(format!("{a}{b}"))),
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64()?, b.as_f64()?);
            let v = match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ if b == 0.0 => return None,
                _ => a / b,
            };
            v.is_finite().then(|| num(v))
        }
        _ => None,
    }
}

// Steps borrow from the document and clone only what a query returns (a function's
// result is new): cloning each step's subtree made a trait's lookup cost the size of
// the whole notification.
fn apply<'a, T: Trail>(step: &Step, t: &T, v: &'a Value) -> Vec<(T, Cow<'a, Value>)> {
    let elements = |a: &'a [Value]| -> Vec<(T, Cow<'a, Value>)> {
        a.iter()
            .enumerate()
            .map(|(i, x)| (t.index(i), Cow::Borrowed(x)))
            .collect()
    };
    match step {
        Step::Group(e) => e
            .find_traced::<T>(v)
            .into_iter()
            .map(|(below, x)| (t.join(&below), Cow::Owned(x)))
            .collect(),
        Step::Field(name) => v
            .get(name.as_str())
            .map(|x| (t.child(name), Cow::Borrowed(x)))
            .into_iter()
            .collect(),
        Step::AllFields => match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| (t.child(k), Cow::Borrowed(x)))
                .collect(),
            Value::Array(a) => elements(a),
            _ => Vec::new(),
        },
        Step::All => match v {
            Value::Array(a) => elements(a),
            other => vec![(t.clone(), Cow::Borrowed(other))],
        },
        Step::Index(i) => match v {
            Value::Array(a) => {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                usize::try_from(idx)
                    .ok()
                    .and_then(|k| a.get(k).map(|x| (t.index(k), Cow::Borrowed(x))))
                    .into_iter()
                    .collect()
            }
            _ => Vec::new(),
        },
        Step::Descendant(name) => {
            let mut out = Vec::new();
            descend(v, t, name, &mut out);
            out
        }
        Step::Filter(path, cmp, value) => match v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .filter(|(_, e)| matches(e, path, *cmp, value))
                .map(|(i, e)| (t.index(i), Cow::Borrowed(e)))
                .collect(),
            _ => Vec::new(),
        },
        Step::Func(f) => call(f, v)
            .map(|x| (t.clone(), Cow::Owned(x)))
            .into_iter()
            .collect(),
    }
}

fn descend<'a, T: Trail>(v: &'a Value, t: &T, name: &str, out: &mut Vec<(T, Cow<'a, Value>)>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push((t.child(name), Cow::Borrowed(x)));
            }
            m.iter()
                .for_each(|(k, c)| descend(c, &t.child(k), name, out));
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, c)| descend(c, &t.index(i), name, out)),
        _ => {}
    }
}

fn matches(e: &Value, path: &[String], cmp: Cmp, want: &Value) -> bool {
    let Some(got) = path.iter().try_fold(e, |v, k| v.get(k.as_str())) else {
        return false;
    };
    let ord = match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        // A bare word compared with a number: compare as text.
        (Value::Number(a), Value::String(b)) => Some(a.to_string().cmp(b)),
        (Value::Bool(a), Value::String(b)) => Some(a.to_string().cmp(&b.to_lowercase())),
        _ => None,
    };
    let Some(ord) = ord else {
        return cmp == Cmp::Ne;
    };
    match cmp {
        Cmp::Eq => ord.is_eq(),
        Cmp::Ne => ord.is_ne(),
        Cmp::Lt => ord.is_lt(),
        Cmp::Le => ord.is_le(),
        Cmp::Gt => ord.is_gt(),
        Cmp::Ge => ord.is_ge(),
    }
}

fn call(f: &Func, v: &Value) -> Option<Value> {
    match f {
        Func::Len => match v {
            Value::String(s) => Some(Value::from(s.chars().count())),
            Value::Array(a) => Some(Value::from(a.len())),
            Value::Object(m) => Some(Value::from(m.len())),
            _ => None,
        },
        Func::Str => Some(Value::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        Func::Split(sep, segment, max) => {
            let s = v.as_str()?;
            // Python's str.split(sep, maxsplit): maxsplit < 0 means no limit.
            let parts: Vec<&str> = if *max < 0 {
                s.split(sep.as_str()).collect()
            } else {
                s.splitn(*max as usize + 1, sep.as_str()).collect()
            };
            let idx = if *segment < 0 {
                parts.len() as i64 + segment
            } else {
                *segment
            };
            usize::try_from(idx)
                .ok()
                .and_then(|i| parts.get(i))
                .map(|p| Value::String((*p).to_owned()))
        }
        Func::Sub(re, repl) => {
            let s = v.as_str()?;
            let repl = ceilo_plugin_api::compat::python_replacement(repl);
            Some(Value::String(re.replace_all(s, repl.as_str()).into_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(expr: &str, doc: &Value) -> Vec<Value> {
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .find(doc)
    }

    fn doc() -> Value {
        json!({
            "event_type": "compute.metrics.update",
            "publisher_id": "compute.h1",
            "ctxt": {"user": "u1"},
            "payload": {
                "host": "h1", "nodename": "n1", "size": 3, "name_to_id": "pool#backend@x",
                "outcome": "success",
                "metrics": [
                    {"name": "cpu.frequency", "value": 2400, "source": "libvirt"},
                    {"name": "cpu.kernel.percent", "value": 0.25}
                ],
                "glance_metadata": [{"key": "image_id", "value": "img-1"}],
                "measurements": [
                    {"metric": {"name": "storage.objects.incoming.bytes", "unit": "B"}, "result": 28},
                    {"metric": {"name": "storage.objects.outgoing.bytes", "unit": "B"}, "result": 10}
                ],
                "target": {"id": "t1"}
            }
        })
    }

    #[test]
    fn a_group_after_a_dot_applies_to_each_match() {
        // gnocchi_resources.yaml's attribute paths.
        let d = json!({"resource_metadata": {"host": "h1", "flavor": {"name": "m1.small"}}});
        let e = "resource_metadata.(instance_type|(flavor.name)|flavor_name)";
        assert_eq!(find(e, &d), [json!("m1.small")]);
        assert_eq!(
            find("resource_metadata.(instance_host|host)", &d),
            [json!("h1")]
        );
        let p = parse("resource_metadata.(flavor.name)").unwrap();
        assert_eq!(p.find_with_paths(&d)[0].0, "resource_metadata.flavor.name");
    }

    #[test]
    fn paths() {
        let d = doc();
        assert_eq!(find("$.payload.size", &d), [json!(3)]);
        assert_eq!(
            find("payload.size", &d),
            [json!(3)],
            "no `$`: from the root"
        );
        assert_eq!(find("$.payload.missing", &d), Vec::<Value>::new());
        assert_eq!(
            find("$.payload.metrics[1].name", &d),
            [json!("cpu.kernel.percent")]
        );
        assert_eq!(find("$.payload.metrics[-1].value", &d), [json!(0.25)]);
        assert_eq!(
            find("$.payload.measurements.[*].metric.[*].name", &d),
            [
                json!("storage.objects.incoming.bytes"),
                json!("storage.objects.outgoing.bytes")
            ],
            "[*] on an object yields the object"
        );
        assert_eq!(find("$..nodename", &d), [json!("n1")]);
    }

    #[test]
    fn filters_in_both_spellings() {
        let d = doc();
        assert_eq!(
            find("$.payload.metrics[?(@.name='cpu.frequency')].value", &d),
            [json!(2400)]
        );
        assert_eq!(
            find("$.payload.glance_metadata[?key=image_id].value", &d),
            [json!("img-1")]
        );
        assert_eq!(
            find("$.payload.metrics[?(@.value > 100)].name", &d),
            [json!("cpu.frequency")]
        );
    }

    #[test]
    fn arithmetic_and_concatenation() {
        let d = doc();
        assert_eq!(
            find("$.payload.host + \"_\" + $.payload.nodename", &d),
            [json!("h1_n1")]
        );
        assert_eq!(
            find(
                "$.payload.metrics[?(@.name='cpu.kernel.percent')].value * 100",
                &d
            ),
            [json!(25)]
        );
        assert_eq!(
            find("$.payload.size + 'x'", &d),
            Vec::<Value>::new(),
            "number + string: nothing"
        );
        assert_eq!(
            find(
                "$.payload.outcome.`sub(/.*/, )` + 'identity.authenticate.' + $.payload.outcome",
                &d
            ),
            [json!("identity.authenticate.success")]
        );
    }

    #[test]
    fn functions_and_unions() {
        let d = doc();
        assert_eq!(
            find("$.payload.name_to_id.`split(#, 0, 1)`", &d),
            [json!("pool")]
        );
        assert_eq!(find("$.payload.name_to_id.`len`", &d), [json!(14)]);
        let e = parse("ctxt.user_id|ctxt.user").unwrap();
        assert_eq!(e.first(&d), Some(json!("u1")));
        let e = parse("($.payload.nope)|($.payload.host)").unwrap();
        assert_eq!(e.first(&d), Some(json!("h1")));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("$.payload[").unwrap_err();
        assert!(e.message.contains("expected"), "{e}");
        let e = parse("$.payload.`frob()`").unwrap_err();
        assert!(e.message.contains("unknown function"), "{e}");
        let e = parse("$.a + ").unwrap_err();
        assert!(e.message.contains("ends too early"), "{e}");
        assert!(parse("%").is_err());
    }

    /// Fuzzing by property: any input either parses or returns an error, and
    /// evaluation never panics (a deterministic generator, so CI is repeatable).
    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "$.[]()*?@'\"`=!<>|+-/,#0123456789abcxyz_ "
            .chars()
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let d = doc();
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let text: String = (0..len)
                .map(|k| alphabet[((seed >> (k % 48)) as usize + k * 7) % alphabet.len()])
                .collect();
            if let Ok(e) = parse(&text) {
                let _ = e.find(&d);
            }
        }
    }
}

/// Bounded property tests: any expression is parsed or refused at a character inside
/// it, and a parsed one evaluates on any payload without a panic.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "$", ".", "..", "payload", "size", "[", "]", "*", "0", "-1", "?", "(", ")", "@", "=", "==",
        "!=", "<", ">=", "'", "\"", "cpu", "|", "+", "-", "/", "`", "split(", "sub(", "len",
        "str()", "#", ",", " ", "/x/", "é", "\u{0}", "ctxt", "1.5",
    ];

    proptest! {
        #[test]
        fn expressions_parse_or_name_a_character(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..60),
        ) {
            let text = pieces.concat();
            match parse(&text) {
                Ok(e) => {
                    let payload = serde_json::json!({
                        "payload": {"size": 3, "cpu": [1, {"name": "x"}], "a": "b#c"},
                        "ctxt": {"user": "u"}
                    });
                    let _ = e.find(&payload);
                }
                Err(err) => {
                    prop_assert!(err.at <= text.chars().count(), "{text}: {err}");
                    prop_assert!(!err.message.is_empty());
                }
            }
        }
    }
}
