//! The small, safe expression language of transformer parameters (`scale`, `expr`):
//! numbers, `+ - * / % **`, parentheses, `or`, sample fields (`volume`,
//! `monotonic_time`, `resource_metadata.a.b`), the functions real pipeline files call
//! (`float`, `int`, `abs`, `min`, `max`, `round`; `float('nan')` and `int('3')` take a
//! quoted number) and, for `arithmetic`, meter references `$(meter.name)` (its volume)
//! or `$(meter.name).resource_metadata.x`.
//!
//! It keeps Python's meaning where Ceilometer's pipeline files rely on it: `a or b`
//! is `a` unless `a` is missing or zero; `**` binds tighter than unary minus and
//! associates to the right. It is parsed once, when the transformer is created, so a
//! bad expression is a parameter error that `ceilo validate` reports; it never runs
//! arbitrary code.

use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Num(f64),
    /// A field of the sample: `["volume"]`, `["resource_metadata", "cpu_number"]`.
    Field(Vec<String>),
    /// A field of another meter's sample (arithmetic): name and path (default volume).
    Meter(String, Vec<String>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Bin(Op, Box<Expr>, Box<Expr>),
    /// Python's `or`.
    Or(Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// The functions an expression may call, with Python's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `float(x)`: `x`.
    Float,
    /// `int(x)`: `x` truncated toward zero.
    Int,
    /// `abs(x)`.
    Abs,
    /// `min(a, b, …)`.
    Min,
    /// `max(a, b, …)`.
    Max,
    /// `round(x)` (halves to even, as Python 3) or `round(x, digits)`.
    Round,
}

impl Func {
    fn named(name: &str) -> Option<Func> {
        Some(match name {
            "float" => Func::Float,
            "int" => Func::Int,
            "abs" => Func::Abs,
            "min" => Func::Min,
            "max" => Func::Max,
            "round" => Func::Round,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Func::Float => "float",
            Func::Int => "int",
            Func::Abs => "abs",
            Func::Min => "min",
            Func::Max => "max",
            Func::Round => "round",
        }
    }
    /// The argument counts it takes: (fewest, most).
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Float | Func::Int | Func::Abs => (1, 1),
            Func::Round => (1, 2),
            Func::Min | Func::Max => (2, 64),
        }
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `**`
    Pow,
}

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The expression.
    pub expr: String,
    /// Byte offset of the problem.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// How much of a long expression an error quotes on each side of the problem.
const QUOTE_AROUND: usize = 40;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad expression `{}` at character {}: {}",
            excerpt(&self.expr, self.at),
            self.at + 1,
            self.message
        )
    }
}

/// The expression, or for a long one the part around byte `at` (`…` where cut).
fn excerpt(text: &str, at: usize) -> String {
    if text.chars().count() <= 2 * QUOTE_AROUND {
        return text.to_owned();
    }
    let at = (0..=at.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(QUOTE_AROUND - 1)
        .map_or(0, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .nth(QUOTE_AROUND)
        .map_or(text.len(), |(i, _)| at + i);
    format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        &text[start..end],
        if end < text.len() { "…" } else { "" }
    )
}

/// The most tokens an expression may have: far beyond any real one, and what keeps
/// parsing and evaluating (both recursive) within a thread's stack.
const MAX_TOKENS: usize = 2000;
/// The deepest nesting of parentheses, signs and `**` exponents.
const MAX_NESTING: usize = 100;

/// Why an expression could not be evaluated for a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the expression's names resolve to. `None`: missing (Python's `None`).
pub trait Scope {
    /// A sample field by path.
    fn field(&self, path: &[String]) -> Option<f64>;
    /// Another meter's field (arithmetic only).
    fn meter(&self, _name: &str, _path: &[String]) -> Option<f64> {
        None
    }
}

/// Names an expression may start with.
const ROOTS: [&str; 3] = ["volume", "monotonic_time", "resource_metadata"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(Vec<String>),
    Meter(String, Vec<String>),
    Op(Op),
    Minus,
    Plus,
    LParen,
    RParen,
    Or,
    Func(Func),
    Comma,
    /// A quoted literal: only as the argument of `float` or `int`.
    Str(String),
}

/// Parses an expression. `meters_allowed`: whether `$(meter)` references may appear.
pub fn parse(text: &str, meters_allowed: bool) -> Result<Expr, ParseError> {
    let toks = lex(text, meters_allowed)?;
    let mut p = Parser {
        text,
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or_expr()?;
    match p.toks.get(p.pos) {
        None => Ok(e),
        Some((at, t)) => Err(p.err(*at, format!("unexpected {}", describe(t)))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Name(p) => format!("name `{}`", p.join(".")),
        Tok::Meter(m, _) => format!("meter `$({m})`"),
        Tok::RParen => "`)`".into(),
        Tok::LParen => "`(`".into(),
        Tok::Or => "`or`".into(),
        Tok::Func(f) => format!("function `{}`", f.name()),
        Tok::Comma => "`,`".into(),
        Tok::Str(t) => format!("text '{t}'"),
        _ => "operator".into(),
    }
}

fn lex(text: &str, meters_allowed: bool) -> Result<Vec<(usize, Tok)>, ParseError> {
    let err = |at: usize, m: String| ParseError {
        expr: text.to_owned(),
        at,
        message: m,
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_' || b[*i] == b'.') {
            *i += 1;
        }
        &text[start..*i]
    };
    while i < b.len() {
        let c = b[i];
        let at = i;
        if out.len() >= MAX_TOKENS {
            return Err(err(
                at,
                format!("longer than {MAX_TOKENS} numbers, names and operators"),
            ));
        }
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'0'..=b'9' | b'.' if c != b'.' || b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let n: f64 = text[at..i]
                    .parse()
                    .map_err(|_| err(at, format!("`{}` is not a number", &text[at..i])))?;
                out.push((at, Tok::Num(n)));
            }
            b'*' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                out.push((at, Tok::Op(Op::Pow)));
            }
            b'*' | b'/' | b'%' => {
                i += 1;
                let op = match c {
                    b'*' => Op::Mul,
                    b'/' => Op::Div,
                    _ => Op::Rem,
                };
                out.push((at, Tok::Op(op)));
            }
            b'+' => {
                i += 1;
                out.push((at, Tok::Plus));
            }
            b'-' => {
                i += 1;
                out.push((at, Tok::Minus));
            }
            b'(' => {
                i += 1;
                out.push((at, Tok::LParen));
            }
            b')' => {
                i += 1;
                out.push((at, Tok::RParen));
            }
            b',' => {
                i += 1;
                out.push((at, Tok::Comma));
            }
            b'\'' | b'"' => {
                let close = text[i + 1..]
                    .find(c as char)
                    .map(|k| i + 1 + k)
                    .ok_or_else(|| err(at, "unclosed quote".into()))?;
                out.push((at, Tok::Str(text[i + 1..close].to_owned())));
                i = close + 1;
            }
            b'$' => {
                if !meters_allowed {
                    return Err(err(
                        at,
                        "meter references `$(…)` are only allowed in arithmetic `expr`".into(),
                    ));
                }
                if b.get(i + 1) != Some(&b'(') {
                    return Err(err(at, "expected `$(meter.name)`".into()));
                }
                let close = text[i..]
                    .find(')')
                    .map(|k| i + k)
                    .ok_or_else(|| err(at, "unclosed `$(`".into()))?;
                let name = text[i + 2..close].trim().to_owned();
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '.' || ch == '-');
                if !valid {
                    return Err(err(at, format!("`$({name})` is not a meter name")));
                }
                i = close + 1;
                let mut path = vec!["volume".to_owned()];
                if b.get(i) == Some(&b'.') {
                    i += 1;
                    let rest = ident(&mut i);
                    path = rest.split('.').map(str::to_owned).collect();
                    check_path(&path).map_err(|m| err(at, m))?;
                }
                out.push((at, Tok::Meter(name, path)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let word = ident(&mut i);
                if word == "or" {
                    out.push((at, Tok::Or));
                    continue;
                }
                if let Some(f) = Func::named(word) {
                    let next = text[i..].trim_start();
                    if next.starts_with('(') {
                        out.push((at, Tok::Func(f)));
                        continue;
                    }
                    return Err(err(
                        at,
                        format!("`{word}` is a function: write `{word}(…)`"),
                    ));
                }
                let path: Vec<String> = word.split('.').map(str::to_owned).collect();
                check_path(&path).map_err(|m| err(at, m))?;
                out.push((at, Tok::Name(path)));
            }
            _ => {
                return Err(err(
                    at,
                    format!(
                        "unexpected character `{}`",
                        &text[at..].chars().next().unwrap_or(' ')
                    ),
                ))
            }
        }
    }
    Ok(out)
}

fn check_path(path: &[String]) -> Result<(), String> {
    let root = path.first().map(String::as_str).unwrap_or("");
    if !ROOTS.contains(&root) {
        return Err(format!(
            "unknown name `{}` (known: volume, monotonic_time, resource_metadata.<key>)",
            path.join(".")
        ));
    }
    if path.iter().any(String::is_empty) {
        return Err(format!("`{}` has an empty part", path.join(".")));
    }
    if root == "resource_metadata" && path.len() < 2 {
        return Err("write `resource_metadata.<key>`".into());
    }
    if root != "resource_metadata" && path.len() > 1 {
        return Err(format!("`{root}` has no fields"));
    }
    Ok(())
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    /// Current nesting (parentheses, signs, exponents), bounded by [`MAX_NESTING`].
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, at: usize, message: String) -> ParseError {
        ParseError {
            expr: self.text.to_owned(),
            at,
            message,
        }
    }
    /// Runs `f` one nesting level deeper, refusing past [`MAX_NESTING`].
    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(self.err(
                self.here(),
                format!("nested more than {MAX_NESTING} levels deep (parentheses, signs or `**`)"),
            ));
        }
        self.depth += 1;
        let e = f(self);
        self.depth -= 1;
        e
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn here(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|(a, _)| *a)
            .unwrap_or(self.text.len())
    }
    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.sum()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.sum()?;
            left = Expr::or(left, right);
        }
        Ok(left)
    }
    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => Op::Add,
                Some(Tok::Minus) => Op::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.product()?;
            left = Expr::bin(op, left, right);
        }
    }
    fn product(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(op @ (Op::Mul | Op::Div | Op::Rem))) => *op,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::bin(op, left, right);
        }
    }
    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(Tok::Minus) => {
                self.pos += 1;
                Ok(Expr::neg(self.nested(Self::unary)?))
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.nested(Self::unary)
            }
            _ => self.power(),
        }
    }
    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.atom()?;
        if self.peek() == Some(&Tok::Op(Op::Pow)) {
            self.pos += 1;
            let exp = self.nested(Self::unary)?; // right-associative; `2 ** -1` is allowed
            return Ok(Expr::bin(Op::Pow, base, exp));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<Expr, ParseError> {
        let at = self.here();
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return Err(self.err(at, "the expression ends too early".into()));
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Name(p) => Ok(Expr::Field(p)),
            Tok::Meter(m, p) => Ok(Expr::Meter(m, p)),
            Tok::Func(f) => self.nested(|p| p.call(f, at)),
            Tok::LParen => {
                let e = self.nested(Self::or_expr)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err(self.here(), "missing `)`".into()));
                }
                self.pos += 1;
                Ok(e)
            }
            other => Err(self.err(at, format!("unexpected {}", describe(&other)))),
        }
    }
}

impl Parser<'_> {
    /// A call's arguments, after its name: `(a, b, …)`.
    fn call(&mut self, f: Func, at: usize) -> Result<Expr, ParseError> {
        // The lexer only makes a function token before `(`.
        self.pos += 1;
        let mut args = Vec::new();
        loop {
            let arg_at = self.here();
            if let Some(Tok::Str(t)) = self.peek().cloned() {
                self.pos += 1;
                args.push(self.quoted_number(f, &t, arg_at)?);
            } else {
                args.push(self.or_expr()?);
            }
            match self.peek() {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::RParen) => {
                    self.pos += 1;
                    break;
                }
                _ => {
                    return Err(self.err(
                        self.here(),
                        format!("expected `,` or `)` in `{}(…)`", f.name()),
                    ))
                }
            }
        }
        let (least, most) = f.arity();
        if args.len() < least || args.len() > most {
            let want = if least == most {
                least.to_string()
            } else if most == 64 {
                format!("{least} or more")
            } else {
                format!("{least} to {most}")
            };
            return Err(self.err(
                at,
                format!(
                    "`{}` takes {want} argument(s), not {}",
                    f.name(),
                    args.len()
                ),
            ));
        }
        Ok(Expr::Call(f, args))
    }

    /// `float('nan')`, `int('3')`: a quoted number, read as Python reads it.
    fn quoted_number(&self, f: Func, text: &str, at: usize) -> Result<Expr, ParseError> {
        if !matches!(f, Func::Float | Func::Int) {
            return Err(self.err(at, format!("`{}` takes numbers, not text", f.name())));
        }
        let t = text.trim().to_ascii_lowercase();
        let n = match (f, t.as_str()) {
            (Func::Float, "nan" | "+nan" | "-nan") => Some(f64::NAN),
            (Func::Float, "inf" | "+inf" | "infinity" | "+infinity") => Some(f64::INFINITY),
            (Func::Float, "-inf" | "-infinity") => Some(f64::NEG_INFINITY),
            (Func::Float, _) => t.parse::<f64>().ok(),
            _ => t.parse::<i64>().ok().map(|i| i as f64),
        };
        n.map(Expr::Num)
            .ok_or_else(|| self.err(at, format!("`{}('{text}')`: not a number", f.name())))
    }
}

/// The parser builds with these, which compute constant parts once (`10**9` in the
/// `cpu_util` scale), since an expression is evaluated for every sample. Bottom-up as
/// the parser goes, so no deeper recursion than parsing itself. A part that would fail
/// (division by zero, an infinite result) is left to fail at evaluation, as before.
impl Expr {
    fn neg(e: Expr) -> Expr {
        match e {
            Expr::Num(n) => Expr::Num(-n),
            e => Expr::Neg(Box::new(e)),
        }
    }

    fn or(a: Expr, b: Expr) -> Expr {
        match a {
            Expr::Num(x) if x != 0.0 => a,
            Expr::Num(_) => b,
            a => Expr::Or(Box::new(a), Box::new(b)),
        }
    }

    fn bin(op: Op, a: Expr, b: Expr) -> Expr {
        let e = Expr::Bin(op, Box::new(a), Box::new(b));
        if let Expr::Bin(_, x, y) = &e {
            if matches!((&**x, &**y), (Expr::Num(_), Expr::Num(_))) {
                if let Ok(Some(v)) = e.value(&NoFields) {
                    if v.is_finite() {
                        return Expr::Num(v);
                    }
                }
            }
        }
        e
    }
}

impl Expr {
    /// Evaluates against `scope`. A missing value used in arithmetic, division by zero
    /// and a non-finite result are errors (Ceilometer drops such samples).
    pub fn eval(&self, scope: &dyn Scope) -> Result<f64, EvalError> {
        // Most evaluations succeed: try without building errors first, and on any
        // doubt evaluate again the full way, which says what went wrong.
        if let Some(Some(x)) = self.quick(scope) {
            if x.is_finite() {
                return Ok(x);
            }
        }
        let v = self.value(scope)?;
        match v {
            Some(x) if x.is_finite() => Ok(x),
            Some(x) => Err(EvalError(format!("the result is {x}"))),
            None => Err(EvalError("the result is missing".into())),
        }
    }

    /// [`value`](Self::value) without errors, which make its result large and every
    /// step slower: `None` where `value` would fail (then `eval` asks `value`),
    /// `Some(None)` where it is missing.
    fn quick(&self, scope: &dyn Scope) -> Option<Option<f64>> {
        let both = |a: &Expr, b: &Expr| Some((a.quick(scope)??, b.quick(scope)??));
        Some(match self {
            Expr::Num(n) => Some(*n),
            Expr::Field(p) => scope.field(p),
            Expr::Meter(m, p) => scope.meter(m, p),
            Expr::Neg(e) => Some(-e.quick(scope)??),
            Expr::Or(a, b) => match a.quick(scope)? {
                Some(x) if x != 0.0 => Some(x),
                _ => b.quick(scope)?,
            },
            Expr::Bin(op, a, b) => {
                let (x, y) = both(a, b)?;
                Some(arith(*op, x, y)?)
            }
            // Rare in per-sample scales: the full way.
            Expr::Call(..) => return None,
        })
    }

    fn value(&self, scope: &dyn Scope) -> Result<Option<f64>, EvalError> {
        Ok(match self {
            Expr::Num(n) => Some(*n),
            Expr::Field(p) => scope.field(p),
            Expr::Meter(m, p) => scope.meter(m, p),
            Expr::Neg(e) => Some(-need(e, scope)?),
            Expr::Or(a, b) => match a.value(scope)? {
                Some(x) if x != 0.0 => Some(x),
                _ => b.value(scope)?,
            },
            Expr::Bin(op, a, b) => {
                let (x, y) = (need(a, scope)?, need(b, scope)?);
                let zero = if *op == Op::Div { "division" } else { "modulo" };
                Some(arith(*op, x, y).ok_or_else(|| EvalError(format!("{zero} by zero")))?)
            }
            Expr::Call(f, args) => {
                let mut v = Vec::with_capacity(args.len());
                for a in args {
                    v.push(need(a, scope)?);
                }
                Some(match (f, v.as_slice()) {
                    (Func::Float, [x]) => *x,
                    (Func::Int, [x]) => x.trunc(),
                    (Func::Abs, [x]) => x.abs(),
                    (Func::Min, xs) => xs.iter().copied().fold(f64::INFINITY, f64::min),
                    (Func::Max, xs) => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    (Func::Round, [x]) => x.round_ties_even(),
                    (Func::Round, [x, digits]) => {
                        let scale = 10f64.powi(digits.trunc().clamp(-300.0, 300.0) as i32);
                        (x * scale).round_ties_even() / scale
                    }
                    _ => {
                        return Err(EvalError(format!(
                            "`{}` got {} argument(s)",
                            f.name(),
                            v.len()
                        )))
                    }
                })
            }
        })
    }

    /// The sample fields an expression reads (`["resource_metadata", "cpu_number"]`),
    /// each once, in order of first appearance.
    pub fn fields(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Field(p) = e {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        });
        out
    }

    /// The meters an expression references, in order of first appearance.
    pub fn meters(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Meter(m, _) = e {
                if !out.contains(m) {
                    out.push(m.clone());
                }
            }
        });
        out
    }

    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Neg(e) => e.walk(f),
            Expr::Bin(_, a, b) | Expr::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
            _ => {}
        }
    }
}

/// `x op y`; `None` for division or modulo by zero.
fn arith(op: Op, x: f64, y: f64) -> Option<f64> {
    Some(match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div | Op::Rem if y == 0.0 => return None,
        Op::Div => x / y,
        Op::Rem => x - y * (x / y).floor(), // Python's sign rule
        Op::Pow => x.powf(y),
    })
}

/// The scope of constant parts, which read nothing.
struct NoFields;

impl Scope for NoFields {
    fn field(&self, _: &[String]) -> Option<f64> {
        None
    }
}

fn need(e: &Expr, scope: &dyn Scope) -> Result<f64, EvalError> {
    e.value(scope)?
        .ok_or_else(|| EvalError(format!("{} is missing", e.describe())))
}

impl Expr {
    fn describe(&self) -> String {
        match self {
            Expr::Field(p) => format!("`{}`", p.join(".")),
            Expr::Meter(m, p) => format!("`$({m}).{}`", p.join(".")),
            _ => "a value".into(),
        }
    }
}

/// A JSON value as a number, the way the expressions see it: numbers, numeric
/// strings and booleans; anything else is missing.
pub fn json_number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_or_long_expressions_are_refused_not_a_stack_overflow() {
        let nested = "nested more than 100";
        let long = "longer than 2000";
        for (text, needles) in [
            (
                format!("{}1{}", "(".repeat(150), ")".repeat(150)),
                vec![nested],
            ),
            (format!("{}1", "-".repeat(150)), vec![nested]),
            (format!("2{}", " ** 2".repeat(150)), vec![nested]),
            (
                format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
                vec![long],
            ),
            (format!("{}1", "-".repeat(100_000)), vec![long]),
            (format!("{}1", "+".repeat(100_000)), vec![long]),
            (format!("2{}", " ** 2".repeat(50_000)), vec![long]),
            (format!("1{}", " + 1".repeat(100_000)), vec![long]),
        ] {
            let e = parse(&text, false).unwrap_err().to_string();
            assert!(
                needles.iter().any(|n| e.contains(n)),
                "{}",
                &e[..e.len().min(300)]
            );
            assert!(
                e.len() < 300,
                "the error quotes a readable part: {} bytes",
                e.len()
            );
        }
        // Within the bounds, nesting works and evaluates.
        let text = format!("{}volume{}", "(".repeat(99), ")".repeat(99));
        assert!(parse(&text, false).is_ok());
        let text = format!("1{}", " + 1".repeat(999));
        struct None_;
        impl Scope for None_ {
            fn field(&self, _: &[String]) -> Option<f64> {
                None
            }
        }
        assert_eq!(parse(&text, false).unwrap().eval(&None_), Ok(1000.0));
    }

    #[test]
    fn long_expressions_are_quoted_around_the_problem() {
        let text = format!("{} + ) + {}", "1 + ".repeat(100), "2 + ".repeat(100));
        let e = parse(&text, false).unwrap_err().to_string();
        assert!(e.starts_with("bad expression `… 1 + 1 + "), "{e}");
        assert!(e.contains(" + ) + 2 + 2"), "{e}");
        assert!(e.contains(" + …` at character"), "{e}");
        assert!(e.len() < 200, "{e}");
    }

    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<String, f64>);
    impl Scope for Vars {
        fn field(&self, path: &[String]) -> Option<f64> {
            self.0.get(&path.join(".")).copied()
        }
        fn meter(&self, name: &str, path: &[String]) -> Option<f64> {
            self.0.get(&format!("${name}.{}", path.join("."))).copied()
        }
    }

    fn eval(text: &str, vars: &[(&str, f64)]) -> Result<f64, String> {
        let scope = Vars(vars.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        parse(text, true)
            .map_err(|e| e.to_string())?
            .eval(&scope)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_quick_path_agrees_with_the_full_one() {
        let texts = [
            "volume * 2",
            "1 / volume",
            "volume % volume",
            "-volume ** 2",
            "volume or 3",
            "(volume or 0) + resource_metadata.n",
            "resource_metadata.n or volume",
            "100.0 / (10**9 * (resource_metadata.n or 1))",
            "$(a) - $(a) / volume",
            "max(volume, 2)",
        ];
        let values = [None, Some(0.0), Some(-1.5), Some(4.0), Some(f64::INFINITY)];
        for text in texts {
            let e = parse(text, true).unwrap();
            for v in values {
                for n in values {
                    let mut vars = HashMap::new();
                    for (key, x) in [("volume", v), ("resource_metadata.n", n), ("$a.volume", n)] {
                        if let Some(x) = x {
                            vars.insert(key.to_string(), x);
                        }
                    }
                    let scope = Vars(vars);
                    let full = e.value(&scope);
                    match e.quick(&scope) {
                        Some(quick) => assert_eq!(
                            Some(quick.map(f64::to_bits)),
                            full.as_ref().map(|f| f.map(f64::to_bits)).ok(),
                            "{text} {v:?} {n:?}"
                        ),
                        None => assert!(
                            full.is_err() || matches!(e, Expr::Call(..)),
                            "{text} {v:?} {n:?}: quick gave up, full gave {full:?}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn ceilometer_cpu_util_scale() {
        let e = "100.0 / (10**9 * (resource_metadata.cpu_number or 1))";
        assert_eq!(eval(e, &[("resource_metadata.cpu_number", 4.0)]), Ok(25e-9));
        // missing metadata field: `or` supplies the default
        assert_eq!(eval(e, &[]), Ok(1e-7));
        // zero counts as false, like Python
        assert_eq!(eval(e, &[("resource_metadata.cpu_number", 0.0)]), Ok(1e-7));
    }

    #[test]
    fn precedence_and_associativity_follow_python() {
        assert_eq!(eval("-2 ** 2", &[]), Ok(-4.0));
        assert_eq!(eval("2 ** 3 ** 2", &[]), Ok(512.0));
        assert_eq!(eval("1 + 2 * 3 - 4 / 2", &[]), Ok(5.0));
        assert_eq!(eval("-7 % 3", &[]), Ok(2.0));
        assert_eq!(eval("volume * 1.0 / 1024", &[("volume", 2048.0)]), Ok(2.0));
        assert_eq!(eval("1e3 + .5", &[]), Ok(1000.5));
    }

    #[test]
    fn meter_references() {
        let e = parse("100 * $(memory.usage) / $(memory)", true).unwrap();
        assert_eq!(e.meters(), ["memory.usage", "memory"]);
        let v = eval(
            "$(memory.usage) / $(memory).resource_metadata.total",
            &[
                ("$memory.usage.volume", 50.0),
                ("$memory.resource_metadata.total", 200.0),
            ],
        );
        assert_eq!(v, Ok(0.25));
        assert!(parse("$(memory)", false)
            .unwrap_err()
            .message
            .contains("only allowed in arithmetic"));
    }

    #[test]
    fn the_functions_pipeline_files_call() {
        assert_eq!(eval("float(volume) / 2", &[("volume", 3.0)]), Ok(1.5));
        assert_eq!(eval("int(7.9) + int(-7.9)", &[]), Ok(0.0));
        assert_eq!(eval("abs(-3) + min(4, 2, 9) + max(1, 5)", &[]), Ok(10.0));
        // Python 3 rounds halves to even.
        assert_eq!(eval("round(2.5) + round(3.5)", &[]), Ok(6.0));
        assert_eq!(eval("round(2.71828, 2)", &[]), Ok(2.72));
        assert_eq!(eval("int('3') * float(\"1.5\")", &[]), Ok(4.5));
        // Ceilometer drops a sample whose expression is NaN; so does ceilo.
        assert_eq!(eval("float('nan')", &[]), Err("the result is NaN".into()));
        assert_eq!(
            eval("max($(a), $(b))", &[("$a.volume", 1.0), ("$b.volume", 2.0)]),
            Ok(2.0)
        );
        for (bad, needle) in [
            ("abs(1, 2)", "takes 1 argument"),
            ("min(1)", "takes 2 or more"),
            ("abs('x')", "takes numbers, not text"),
            ("float('many')", "not a number"),
            ("max", "is a function"),
            ("round(1 2)", "expected `,` or `)`"),
            ("float('nan", "unclosed quote"),
            ("'3' + 1", "unexpected text"),
        ] {
            let e = parse(bad, true).unwrap_err();
            assert!(e.message.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("volum * 2", false).unwrap_err();
        assert_eq!(e.at, 0);
        assert!(e.message.contains("unknown name `volum`"), "{e}");
        let e = parse("(volume * 2", false).unwrap_err();
        assert!(e.message.contains("missing `)`"), "{e}");
        let e = parse("volume *", false).unwrap_err();
        assert!(e.message.contains("ends too early"), "{e}");
        let e = parse("__import__('os')", false).unwrap_err();
        assert!(e.message.contains("unknown name"), "{e}");
        let e = parse("volume ; 1", false).unwrap_err();
        assert!(e.to_string().contains("character 8"), "{e}");
    }

    #[test]
    fn evaluation_failures() {
        assert_eq!(
            eval("volume / 0", &[("volume", 1.0)]),
            Err("division by zero".into())
        );
        assert_eq!(eval("volume * 2", &[]), Err("`volume` is missing".into()));
        assert!(eval("$(a) - $(a) / 0.0", &[("$a.volume", 0.0)]).is_err());
        assert_eq!(eval("10 ** 400", &[]), Err("the result is inf".into()));
        // Constant parts that fail are not computed away at parse time.
        assert_eq!(eval("1 / 0", &[]), Err("division by zero".into()));
        assert_eq!(eval("0 or 2 % 0", &[]), Err("modulo by zero".into()));
    }

    #[test]
    fn constant_parts_are_computed_once_at_parse_time() {
        let field = Expr::Field(vec!["resource_metadata".into(), "cpu_number".into()]);
        let e = parse(
            "100.0 / (10**9 * (resource_metadata.cpu_number or 1))",
            false,
        );
        assert_eq!(
            e,
            Ok(Expr::Bin(
                Op::Div,
                Box::new(Expr::Num(100.0)),
                Box::new(Expr::Bin(
                    Op::Mul,
                    Box::new(Expr::Num(1e9)),
                    Box::new(Expr::Or(Box::new(field.clone()), Box::new(Expr::Num(1.0)))),
                )),
            ))
        );
        assert_eq!(parse("-(2 ** 3) + 1", false), Ok(Expr::Num(-7.0)));
        assert_eq!(
            parse("0 or volume", false),
            Ok(Expr::Field(vec!["volume".into()]))
        );
        assert_eq!(parse("3 or volume", false), Ok(Expr::Num(3.0)));
        // Folding keeps Python's left-to-right order: only whole constant parts fold.
        assert_eq!(eval("volume + 1e16 - 1e16", &[("volume", 1.0)]), Ok(0.0));
    }
}
