//! [`Text`]: an immutable, reference-counted string that crosses the plugin ABI.

use std::alloc::{self, Layout};
use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use abi_stable::StableAbi;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string shared by reference count: cloning it costs one atomic
/// increment, not an allocation and a copy. Sample fields are `Text` since plugin
/// ABI 1.2, so a transformer that passes a sample on, or a poller that gives a thousand
/// samples the same meter name, copies no string.
///
/// It derefs to `str`, and is made from `&str`, `String`, `Cow<str>` and friends with
/// `into()`. Clone a `Text` you keep (a meter name from the parameters, a resource id
/// seen on every poll) instead of making it again from text.
///
/// ```
/// use ceilo_plugin_api::Text;
///
/// let name: Text = "cpu".into();
/// let again = name.clone(); // no copy of the bytes
/// assert!(Text::ptr_eq(&name, &again));
/// assert_eq!(&*again, "cpu");
/// assert_eq!(again, "cpu");
/// assert_eq!(Text::default(), "");
/// ```
#[repr(transparent)]
#[derive(StableAbi)]
pub struct Text {
    /// Null for the empty string (no allocation).
    header: *const TextHeader,
}

/// The shared part of a [`Text`]: reference count, length, bytes and the function of
/// the library that allocated it, which alone may free it.
#[repr(C)]
#[derive(StableAbi)]
pub struct TextHeader {
    strong: AtomicUsize,
    len: usize,
    bytes: *const u8,
    /// `None` for a header that lives forever (a `static`): no counting.
    free: Option<unsafe extern "C" fn(*const TextHeader)>,
}

// SAFETY: the bytes are never written after construction and the count is atomic.
unsafe impl Send for Text {}
// SAFETY: as above.
unsafe impl Sync for Text {}
// SAFETY: a header is immutable but for its atomic count.
unsafe impl Sync for TextHeader {}

impl TextHeader {
    /// A header for text that lives as long as the program, for a `static` (see
    /// [`Text::from_static`]).
    pub const fn immortal(text: &'static str) -> TextHeader {
        TextHeader {
            strong: AtomicUsize::new(1),
            len: text.len(),
            bytes: text.as_ptr(),
            free: None,
        }
    }
}

fn heap_layout(len: usize) -> Option<Layout> {
    let size = std::mem::size_of::<TextHeader>().checked_add(len)?;
    Layout::from_size_align(size, std::mem::align_of::<TextHeader>()).ok()
}

/// Frees a header made by [`Text::from_str_copy`] in this library.
unsafe extern "C" fn free_heap(header: *const TextHeader) {
    // SAFETY: only called once, by the last owner, on a header `from_str_copy` made;
    // its layout is recomputed from the length it was made with.
    unsafe {
        let len = (*header).len;
        if let Some(layout) = heap_layout(len) {
            alloc::dealloc(header as *mut u8, layout);
        }
    }
}

impl Text {
    /// The empty string (no allocation).
    pub const fn new() -> Text {
        Text {
            header: ptr::null(),
        }
    }

    /// Text over a `static` header: never counted, never freed.
    ///
    /// ```
    /// use ceilo_plugin_api::{Text, TextHeader};
    /// static CPU: TextHeader = TextHeader::immortal("cpu");
    /// let t = Text::from_static(&CPU);
    /// assert_eq!(t, "cpu");
    /// ```
    pub const fn from_static(header: &'static TextHeader) -> Text {
        Text { header }
    }

    /// Text that lives as long as the process and is never counted, the same header
    /// for the same text: for the few names a plugin puts on every sample it makes (a
    /// transformer's target meter name and unit, taken from its parameters), whose
    /// clones and drops then cost no atomic operation. Each distinct text is kept once
    /// per loaded library and never freed, so intern configured names only, never
    /// values that vary (resource ids, metadata): those would pile up.
    ///
    /// ```
    /// use ceilo_plugin_api::Text;
    /// let target = Text::interned("cpu_util");
    /// assert_eq!(target, "cpu_util");
    /// // Asked again (another instance with the same parameters): the same text.
    /// assert!(Text::ptr_eq(&target, &Text::interned("cpu_util")));
    /// ```
    pub fn interned(s: &str) -> Text {
        use std::collections::HashMap;
        use std::sync::{Mutex, OnceLock};
        // Leaked on purpose: a sample may carry the text anywhere in the host, for as
        // long as the process runs; the table bounds this to one copy per text.
        static INTERNED: OnceLock<Mutex<HashMap<&'static str, &'static TextHeader>>> =
            OnceLock::new();
        if s.is_empty() {
            return Text::new();
        }
        let table = INTERNED.get_or_init(Mutex::default);
        // A panic while holding the lock cannot leave the table half-written.
        let mut table = table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&header) = table.get(s) {
            return Text::from_static(header);
        }
        let text: &'static str = Box::leak(Box::from(s));
        let header: &'static TextHeader = Box::leak(Box::new(TextHeader::immortal(text)));
        table.insert(text, header);
        Text::from_static(header)
    }

    fn from_str_copy(s: &str) -> Text {
        if s.is_empty() {
            return Text::new();
        }
        // As `String` does on capacity overflow: a panic, which the ABI guards catch.
        let Some(layout) = heap_layout(s.len()) else {
            panic!("text of {} bytes is too long to allocate", s.len())
        };
        // SAFETY: the layout is non-zero-sized; the header is written before use and
        // the bytes copied right after it, inside the allocation.
        unsafe {
            let block = alloc::alloc(layout);
            if block.is_null() {
                alloc::handle_alloc_error(layout);
            }
            let header = block as *mut TextHeader;
            let bytes = block.add(std::mem::size_of::<TextHeader>());
            ptr::copy_nonoverlapping(s.as_ptr(), bytes, s.len());
            header.write(TextHeader {
                strong: AtomicUsize::new(1),
                len: s.len(),
                bytes,
                free: Some(free_heap),
            });
            Text { header }
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        if self.header.is_null() {
            return "";
        }
        // SAFETY: a non-null header is alive while this `Text` is, and its bytes are
        // the UTF-8 they were made from.
        unsafe {
            let h = &*self.header;
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(h.bytes, h.len))
        }
    }

    /// The address of the shared part, which identifies this text among live ones
    /// without reading it (the empty text is 0).
    pub(crate) fn addr(&self) -> usize {
        self.header as usize
    }

    /// Whether both are the same shared text (not merely equal): a cheap test for
    /// "unchanged since I last saw it", e.g. to reuse what was parsed from metadata.
    pub fn ptr_eq(a: &Text, b: &Text) -> bool {
        ptr::eq(a.header, b.header)
    }
}

/// An optional [`Text`] in one pointer: `None` is a header whose length is
/// `usize::MAX` (no real text has it) and that is never freed. The mark is the length,
/// not the header's address: every library has its own copy of the `static`, and a
/// `None` made in a plugin must read as `None` in the host.
#[repr(transparent)]
#[derive(StableAbi, Clone)]
pub(crate) struct OptText(Text);

const NONE_LEN: usize = usize::MAX;

static NONE_HEADER: TextHeader = TextHeader {
    strong: AtomicUsize::new(1),
    len: NONE_LEN,
    bytes: ptr::NonNull::<u8>::dangling().as_ptr(),
    free: None,
};

impl OptText {
    pub(crate) const NONE: OptText = OptText(Text::from_static(&NONE_HEADER));

    pub(crate) fn some(t: Text) -> OptText {
        OptText(t)
    }

    fn is_none(&self) -> bool {
        // SAFETY: a non-null header is alive while this text is.
        unsafe { self.0.header.as_ref() }.is_some_and(|h| h.len == NONE_LEN)
    }

    pub(crate) fn get(&self) -> Option<&Text> {
        (!self.is_none()).then_some(&self.0)
    }

    pub(crate) fn into_option(self) -> Option<Text> {
        (!self.is_none()).then_some(self.0)
    }
}

impl From<Option<Text>> for OptText {
    fn from(t: Option<Text>) -> Self {
        t.map_or(OptText::NONE, OptText::some)
    }
}

impl fmt::Debug for OptText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl PartialEq for OptText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

impl Clone for Text {
    fn clone(&self) -> Self {
        // SAFETY: a non-null header is alive while `self` is.
        if let Some(h) = unsafe { self.header.as_ref() } {
            if h.free.is_some() {
                // As `Arc`: relaxed is enough to add an owner one already has.
                let old = h.strong.fetch_add(1, Ordering::Relaxed);
                if old > isize::MAX as usize {
                    std::process::abort();
                }
            }
        }
        Text {
            header: self.header,
        }
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        // SAFETY: a non-null header is alive while `self` is.
        let Some(h) = (unsafe { self.header.as_ref() }) else {
            return;
        };
        let Some(free) = h.free else { return };
        if h.strong.fetch_sub(1, Ordering::Release) == 1 {
            fence(Ordering::Acquire);
            // SAFETY: this was the last owner; `free` belongs to the allocating library.
            unsafe { free(self.header) }
        }
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        Text::ptr_eq(self, other) || self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::from_str_copy(s)
    }
}

impl From<&mut str> for Text {
    fn from(s: &mut str) -> Self {
        Text::from_str_copy(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::from_str_copy(&s)
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Text::from_str_copy(s)
    }
}

impl From<Box<str>> for Text {
    fn from(s: Box<str>) -> Self {
        Text::from_str_copy(&s)
    }
}

impl From<Cow<'_, str>> for Text {
    fn from(s: Cow<'_, str>) -> Self {
        Text::from_str_copy(&s)
    }
}

impl From<char> for Text {
    fn from(c: char) -> Self {
        Text::from_str_copy(c.encode_utf8(&mut [0; 4]))
    }
}

impl From<&Text> for Text {
    fn from(t: &Text) -> Self {
        t.clone()
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.as_str().to_owned()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Straight from the input's bytes: one copy, no intermediate `String`.
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text::from(v))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_texts_are_shared_uncounted_and_outlive_their_users() {
        let a = Text::interned("bench.rate");
        let b = Text::interned(&String::from("bench.rate"));
        assert!(Text::ptr_eq(&a, &b));
        assert!(!Text::ptr_eq(&a, &Text::interned("bench.other")));
        // Never counted: clones and drops leave the count alone.
        // SAFETY: an interned header is never freed.
        let count = || unsafe { (*a.header).strong.load(Ordering::Relaxed) };
        let before = count();
        let clones: Vec<Text> = (0..10).map(|_| a.clone()).collect();
        assert_eq!(count(), before);
        drop(clones);
        drop(b);
        assert_eq!(count(), before);
        assert_eq!(a, "bench.rate");
        assert_eq!(Text::interned(""), "");
        assert!(Text::interned("").header.is_null());
    }

    #[test]
    fn clones_share_and_the_last_one_frees() {
        let a = Text::from("resource-1");
        let b = a.clone();
        let c = b.clone();
        drop(a);
        drop(b);
        assert_eq!(c, "resource-1");
        // SAFETY: test only: one owner left.
        assert_eq!(unsafe { (*c.header).strong.load(Ordering::Relaxed) }, 1);
    }

    #[test]
    fn empty_text_allocates_nothing_and_statics_are_not_counted() {
        assert!(Text::from("").header.is_null());
        static H: TextHeader = TextHeader::immortal("ceilo");
        let t = Text::from_static(&H);
        let u = t.clone();
        drop(t);
        assert_eq!(u, "ceilo");
        assert_eq!(H.strong.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn shared_across_threads() {
        let t = Text::from("shared");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let u = t.clone();
                        assert_eq!(u, "shared");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // SAFETY: test only: every thread has ended.
        assert_eq!(unsafe { (*t.header).strong.load(Ordering::Relaxed) }, 1);
    }

    #[test]
    fn optional_text_keeps_none_apart_from_empty() {
        assert_eq!(OptText::NONE.get(), None);
        // Another library's `None` (its own header) reads as `None` too.
        static OTHER_LIBRARYS_NONE: TextHeader = TextHeader {
            strong: AtomicUsize::new(1),
            len: NONE_LEN,
            bytes: ptr::NonNull::<u8>::dangling().as_ptr(),
            free: None,
        };
        assert_eq!(OptText(Text::from_static(&OTHER_LIBRARYS_NONE)).get(), None);
        assert_eq!(OptText::some(Text::new()).get(), Some(&Text::new()));
        assert_eq!(
            OptText::from(Some(Text::from("p"))).into_option().unwrap(),
            "p"
        );
        assert_eq!(std::mem::size_of::<OptText>(), 8);
    }

    #[test]
    fn serde_and_conversions() {
        let t: Text = serde_json::from_str("\"caf\\u00e9\"").unwrap();
        assert_eq!(t, "café");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"café\"");
        assert_eq!(String::from(t.clone()), "café");
        assert_eq!(Text::from('x'), "x");
        let (a, b) = (Text::from("a"), Text::from("b"));
        assert!(a < b);
    }
}
