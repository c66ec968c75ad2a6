//! Types written against the stable C API directly (`PyType_FromSpec`), for the per-event path.
//!
//! Why not `#[pyclass]`: PyO3 builds every instance through its generic initializer (base
//! `tp_new` → `object_new` → `tp_alloc`) and frees it through a trampoline that guards against
//! panics; for a `MessageEvent` that is made and dropped once per event, that was ~700 of the
//! ~2,000 instructions the Python thread spent per small event. Here an event is one
//! `PyObject_Malloc`, `PyObject_Init` and four pointer stores, and its fields are read through
//! `PyMemberDef`s. Likewise the iterators: a `for`/`async for` step over a batch is a direct C
//! call that takes the next list item, not a resumed generator frame (and, for `async for`, not
//! an async-generator step, which costs several times a generator's).
//!
//! Everything here is abi3 (the limited API of Python 3.9); `am_send` is used where the running
//! interpreter has it (3.10+). Every function runs with the GIL held (CPython calls slots with
//! it) and never panics (a panic cannot unwind out of an `extern "C"` function).
//!
//! - `MessageEvent`: four exact `str`s. Not a GC type: it holds only `str`s, so it cannot be part
//!   of a reference cycle (a `str` subclass passed to the constructor is converted to `str`).
//!   `json()` parses `data` with `json.loads`.
//! - `BatchSlot`: a batch (list) and the index of the next event to hand out. The Python
//!   generator that does the real work (waiting, listeners, errors) `feed`s it a batch of
//!   messages and yields the first; the iterator hands out the rest without resuming the
//!   generator. Shared by the two, so neither references the other (no cycle: abandoning an
//!   iteration finalizes the generator at once, as it did when the generator was the iterator).
//!   `close()` empties the list, which stops the iterator at once.
//! - `SyncIter` / `AsyncIter`: the iterators over a slot and a generator / async generator.
//! - `Ready`: an already-completed awaitable (the value of an `AsyncIter.__anext__()` that did not
//!   need to wait), reused while nobody else holds it.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::offset_of;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi::{self, Py_ssize_t, PyObject, PyTypeObject};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

// ---------------------------------------------------------------------------------------------
// Type registry.

static MESSAGE_EVENT: AtomicPtr<PyTypeObject> = AtomicPtr::new(null_mut());
static BATCH_SLOT: AtomicPtr<PyTypeObject> = AtomicPtr::new(null_mut());
static READY: AtomicPtr<PyTypeObject> = AtomicPtr::new(null_mut());
/// The running interpreter is 3.10 or later: `am_send` and `Py_TPFLAGS_IMMUTABLETYPE` exist.
static HAS_AM_SEND: AtomicBool = AtomicBool::new(false);

fn message_event_type() -> *mut PyTypeObject {
    MESSAGE_EVENT.load(Ordering::Relaxed)
}

/// Returns the owned type object (leaked spec: types live as long as the interpreter).
fn make_type(
    py: Python<'_>,
    name: &'static CStr,
    basicsize: usize,
    gc: bool,
    mut slots: Vec<ffi::PyType_Slot>,
) -> PyResult<Py<PyAny>> {
    slots.push(ffi::PyType_Slot { slot: 0, pfunc: null_mut() });
    let slots: &'static mut [ffi::PyType_Slot] = Vec::leak(slots);
    let mut flags = ffi::Py_TPFLAGS_DEFAULT;
    if gc {
        flags |= ffi::Py_TPFLAGS_HAVE_GC;
    }
    if HAS_AM_SEND.load(Ordering::Relaxed) {
        flags |= 1 << 8; // Py_TPFLAGS_IMMUTABLETYPE (3.10+)
    }
    let spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: 0,
        flags: flags as _,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: a valid spec with 'static strings and slot tables; the GIL is held.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec)) }.map(Bound::unbind)
}

const MESSAGE_EVENT_DOC: &CStr = c"MessageEvent(type=None, *, data=None, last_event_id=None, \
    origin=None)\n--\n\nA message event: `type`, `data`, `last_event_id`, `origin` (all `str`).";
const JSON_DOC: &CStr = c"json($self, /)\n--\n\nThe data parsed as JSON (`json.loads(data)`); \
    raises `json.JSONDecodeError` (a `ValueError`) when it is not JSON.";
const FEED_DOC: &CStr = c"feed($self, batch, /)\n--\n\nHands out `batch[1:]` next; returns \
    `batch[0]` (None if the batch is empty).";
const BATCH_SLOT_DOC: &CStr =
    c"BatchSlot()\n--\n\nThe batch an iterator hands out without resuming its generator.";

fn doc(text: &'static CStr) -> ffi::PyType_Slot {
    slot(ffi::Py_tp_doc, text.as_ptr() as *mut c_void)
}

fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

/// A method table with one method (leaked: types live as long as the interpreter).
fn one_method(
    name: &'static CStr,
    meth: ffi::PyCFunction,
    flags: c_int,
    doc: &'static CStr,
) -> &'static mut [ffi::PyMethodDef] {
    Vec::leak(vec![
        ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: meth },
            ml_flags: flags,
            ml_doc: doc.as_ptr(),
        },
        ffi::PyMethodDef::zeroed(),
    ])
}

/// A new reference to `None`.
unsafe fn new_none() -> *mut PyObject {
    // SAFETY: the caller holds the GIL.
    unsafe {
        let none = ffi::Py_None();
        ffi::Py_INCREF(none);
        none
    }
}

/// Creates the types and adds the public ones to the module (`MessageEvent`, `BatchSlot`,
/// `SyncIter`, `AsyncIter`).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    HAS_AM_SEND.store(py.version_info() >= (3, 10), Ordering::Relaxed);

    let members: &'static mut [ffi::PyMemberDef] = Vec::leak(vec![
        member(
            c"type",
            offset_of!(RawMessageEvent, event_type),
            c"`\"message\"` unless the stream named the event with an `event:` field.",
        ),
        member(c"data", offset_of!(RawMessageEvent, data), c"The data of the event."),
        member(
            c"last_event_id",
            offset_of!(RawMessageEvent, last_event_id),
            c"The last event ID of the source when the event was dispatched.",
        ),
        member(
            c"origin",
            offset_of!(RawMessageEvent, origin),
            c"Serialized origin of the final URL (after redirects), e.g. `http://127.0.0.1:8080`.",
        ),
        ffi::PyMemberDef::default(),
    ]);
    let me_methods = one_method(c"json", me_json, ffi::METH_NOARGS, JSON_DOC);
    let me = make_type(
        py,
        c"eventsource_native.MessageEvent",
        size_of::<RawMessageEvent>(),
        false,
        vec![
            doc(MESSAGE_EVENT_DOC),
            slot(ffi::Py_tp_methods, me_methods.as_mut_ptr().cast()),
            slot(ffi::Py_tp_new, me_new as *mut c_void),
            slot(ffi::Py_tp_dealloc, me_dealloc as *mut c_void),
            slot(ffi::Py_tp_members, members.as_mut_ptr().cast()),
            slot(ffi::Py_tp_repr, me_repr as *mut c_void),
            slot(ffi::Py_tp_richcompare, me_richcompare as *mut c_void),
            slot(ffi::Py_tp_hash, ffi::PyObject_HashNotImplemented as *mut c_void),
        ],
    )?;
    MESSAGE_EVENT.store(me.as_ptr().cast(), Ordering::Relaxed);
    m.add("MessageEvent", me)?;

    let slot_methods = one_method(c"feed", slot_feed, ffi::METH_O, FEED_DOC);
    let bs = make_type(
        py,
        c"eventsource_native._native.BatchSlot",
        size_of::<RawSlot>(),
        false,
        vec![
            doc(BATCH_SLOT_DOC),
            slot(ffi::Py_tp_new, slot_new as *mut c_void),
            slot(ffi::Py_tp_dealloc, slot_dealloc as *mut c_void),
            slot(ffi::Py_tp_methods, slot_methods.as_mut_ptr().cast()),
        ],
    )?;
    BATCH_SLOT.store(bs.as_ptr().cast(), Ordering::Relaxed);
    m.add("BatchSlot", bs)?;

    let sync_methods = one_method(
        c"close",
        iter_close,
        ffi::METH_NOARGS,
        c"close($self, /)\n--\n\nCloses the underlying generator (ends the iteration).",
    );
    let si = make_type(
        py,
        c"eventsource_native._native.SyncIter",
        size_of::<RawIter>(),
        true,
        vec![
            doc(c"SyncIter(gen, slot, /)\n--\n\nYields the slot's batch, else from `gen`."),
            slot(ffi::Py_tp_new, sync_new as *mut c_void),
            slot(ffi::Py_tp_dealloc, iter_dealloc as *mut c_void),
            slot(ffi::Py_tp_traverse, iter_traverse as *mut c_void),
            slot(ffi::Py_tp_clear, iter_clear as *mut c_void),
            slot(ffi::Py_tp_iter, self_iter as *mut c_void),
            slot(ffi::Py_tp_iternext, sync_next as *mut c_void),
            slot(ffi::Py_tp_methods, sync_methods.as_mut_ptr().cast()),
        ],
    )?;
    m.add("SyncIter", si)?;

    let ready =
        make_type(py, c"eventsource_native._native.Ready", size_of::<RawReady>(), false, {
            let mut v = vec![
                doc(c"An already-completed awaitable."),
                slot(ffi::Py_tp_dealloc, ready_dealloc as *mut c_void),
                slot(ffi::Py_am_await, self_iter as *mut c_void),
                slot(ffi::Py_tp_iternext, ready_next as *mut c_void),
            ];
            if HAS_AM_SEND.load(Ordering::Relaxed) {
                v.push(slot(ffi::Py_am_send, ready_send as *mut c_void));
            }
            v
        })?;
    // Private: the static keeps the type (types live as long as the interpreter).
    READY.store(ready.into_ptr().cast(), Ordering::Relaxed);

    let async_methods = one_method(
        c"aclose",
        async_aclose,
        ffi::METH_NOARGS,
        c"aclose($self, /)\n--\n\nCloses the underlying async generator (an awaitable).",
    );
    let ai = make_type(
        py,
        c"eventsource_native._native.AsyncIter",
        size_of::<RawIter>(),
        true,
        vec![
            doc(c"AsyncIter(agen, slot, /)\n--\n\nYields the slot's batch, else from `agen`."),
            slot(ffi::Py_tp_new, async_new as *mut c_void),
            slot(ffi::Py_tp_dealloc, iter_dealloc as *mut c_void),
            slot(ffi::Py_tp_traverse, iter_traverse as *mut c_void),
            slot(ffi::Py_tp_clear, iter_clear as *mut c_void),
            slot(ffi::Py_am_aiter, self_iter as *mut c_void),
            slot(ffi::Py_am_anext, async_anext as *mut c_void),
            slot(ffi::Py_tp_methods, async_methods.as_mut_ptr().cast()),
        ],
    )?;
    m.add("AsyncIter", ai)?;
    Ok(())
}

fn member(name: &'static CStr, offset: usize, doc: &'static CStr) -> ffi::PyMemberDef {
    ffi::PyMemberDef {
        name: name.as_ptr(),
        type_code: ffi::Py_T_OBJECT_EX,
        offset: offset as Py_ssize_t,
        flags: ffi::Py_READONLY,
        doc: doc.as_ptr(),
    }
}

/// Allocates an instance of a non-GC type made here (dealloc: `PyObject_Free`, then decref
/// the type). Fields are uninitialized.
unsafe fn alloc_plain<T>(tp: *mut PyTypeObject) -> *mut T {
    // SAFETY: the caller passes one of our non-GC heap types whose basicsize is size_of::<T>().
    unsafe {
        let obj = ffi::PyObject_Malloc(size_of::<T>()).cast::<PyObject>();
        if obj.is_null() {
            ffi::PyErr_NoMemory();
            return null_mut();
        }
        ffi::PyObject_Init(obj, tp);
        obj.cast()
    }
}

/// Frees an instance made by `alloc_plain` (its fields already released).
unsafe fn free_plain(obj: *mut PyObject) {
    // SAFETY: `obj` came from alloc_plain; instances of heap types own a reference to the type.
    unsafe {
        let tp = ffi::Py_TYPE(obj);
        ffi::PyObject_Free(obj.cast());
        ffi::Py_DECREF(tp.cast());
    }
}

fn raise(err: PyErr) -> *mut PyObject {
    // SAFETY: only called from slots, which CPython calls with the GIL held.
    err.restore(unsafe { Python::assume_attached() });
    null_mut()
}

// ---------------------------------------------------------------------------------------------
// MessageEvent.

#[repr(C)]
struct RawMessageEvent {
    ob_base: PyObject,
    event_type: *mut PyObject,
    data: *mut PyObject,
    last_event_id: *mut PyObject,
    origin: *mut PyObject,
}

/// A new `MessageEvent` owning the four (exact) strings. None on allocation failure (the
/// strings are released and a Python error is set).
pub fn new_message_event<'py>(
    py: Python<'py>,
    event_type: Py<PyAny>,
    data: Py<PyAny>,
    last_event_id: Py<PyAny>,
    origin: Py<PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; the type was made by `register` with this layout.
    unsafe {
        let obj = alloc_plain::<RawMessageEvent>(message_event_type());
        if obj.is_null() {
            return Err(PyErr::fetch(py));
        }
        (*obj).event_type = event_type.into_ptr();
        (*obj).data = data.into_ptr();
        (*obj).last_event_id = last_event_id.into_ptr();
        (*obj).origin = origin.into_ptr();
        Ok(Bound::from_owned_ptr(py, obj.cast()))
    }
}

/// The `type` of a `MessageEvent`.
pub fn message_type_of<'py>(ev: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if ev.get_type().as_ptr() != message_event_type().cast() {
        return Err(PyTypeError::new_err("not a MessageEvent"));
    }
    let me = ev.as_ptr().cast::<RawMessageEvent>();
    // SAFETY: `ev` is a live MessageEvent, whose fields are always set.
    Ok(unsafe { Bound::from_borrowed_ptr(ev.py(), (*me).event_type) })
}

unsafe extern "C" fn me_dealloc(obj: *mut PyObject) {
    // SAFETY: called by CPython once the last reference is gone; all four fields are owned.
    unsafe {
        let me = obj.cast::<RawMessageEvent>();
        ffi::Py_DECREF((*me).event_type);
        ffi::Py_DECREF((*me).data);
        ffi::Py_DECREF((*me).last_event_id);
        ffi::Py_DECREF((*me).origin);
        free_plain(obj);
    }
}

/// `MessageEvent(type=None, *, data=None, last_event_id=None, origin=None)`.
unsafe extern "C" fn me_new(
    tp: *mut PyTypeObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: CPython calls tp_new with the GIL held and valid (or NULL kwargs) arguments.
    let py = unsafe { Python::assume_attached() };
    let args = unsafe { Bound::from_borrowed_ptr(py, args) };
    let kwargs = unsafe { Bound::from_borrowed_ptr_or_opt(py, kwargs) };
    match me_new_checked(py, &args, kwargs.as_ref()) {
        Ok([t, d, l, o]) => {
            if tp != message_event_type() {
                return raise(PyTypeError::new_err("MessageEvent cannot be subclassed"));
            }
            match new_message_event(py, t, d, l, o) {
                Ok(obj) => obj.into_ptr(),
                Err(e) => raise(e),
            }
        }
        Err(e) => raise(e),
    }
}

const FIELDS: [&str; 4] = ["type", "data", "last_event_id", "origin"];

fn me_new_checked(
    py: Python<'_>,
    args: &Bound<'_, PyAny>,
    kwargs: Option<&Bound<'_, PyAny>>,
) -> PyResult<[Py<PyAny>; 4]> {
    use pyo3::types::{PyDict, PyString, PyTuple};
    let args = args.cast::<PyTuple>()?;
    if args.len() > 1 {
        return Err(PyTypeError::new_err(format!(
            "MessageEvent() takes at most 1 positional argument ({} given)",
            args.len()
        )));
    }
    let mut vals: [Option<Bound<'_, PyAny>>; 4] = [None, None, None, None];
    if let Ok(t) = args.get_item(0) {
        vals[0] = Some(t);
    }
    if let Some(kw) = kwargs {
        for (k, v) in kw.cast::<PyDict>()?.iter() {
            let k = k.cast_into::<PyString>()?;
            let name = k.to_cow()?;
            let Some(i) = FIELDS.iter().position(|f| *f == name) else {
                return Err(PyTypeError::new_err(format!(
                    "MessageEvent() got an unexpected keyword argument '{name}'"
                )));
            };
            if vals[i].is_some() {
                return Err(PyTypeError::new_err(format!(
                    "MessageEvent() got multiple values for argument '{name}'"
                )));
            }
            vals[i] = Some(v);
        }
    }
    let mut out: [Option<Py<PyAny>>; 4] = [None, None, None, None];
    for (i, v) in vals.into_iter().enumerate() {
        out[i] = Some(match v {
            None => if i == 0 { "message" } else { "" }.into_pyobject(py)?.into_any().unbind(),
            Some(v) if v.is_none() => {
                if i == 0 { "message" } else { "" }.into_pyobject(py)?.into_any().unbind()
            }
            Some(v) if v.is_exact_instance_of::<PyString>() => v.unbind(),
            // A str subclass becomes a plain str (no attributes: no reference cycles).
            Some(v) if v.is_instance_of::<PyString>() => v.str()?.into_any().unbind(),
            Some(v) => {
                return Err(PyTypeError::new_err(format!(
                    "MessageEvent() argument '{}' must be str or None, not {}",
                    FIELDS[i],
                    v.get_type().name()?
                )));
            }
        });
    }
    let [Some(t), Some(d), Some(l), Some(o)] = out else {
        return Err(PyValueError::new_err("unreachable"));
    };
    Ok([t, d, l, o])
}

/// `MessageEvent.json()`: `json.loads(self.data)`.
unsafe extern "C" fn me_json(obj: *mut PyObject, _: *mut PyObject) -> *mut PyObject {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    // SAFETY: CPython calls methods with the GIL held; `obj` is a MessageEvent, whose fields
    // are always set.
    let py = unsafe { Python::assume_attached() };
    let data = unsafe { Bound::from_borrowed_ptr(py, (*obj.cast::<RawMessageEvent>()).data) };
    match LOADS.import(py, "json", "loads").and_then(|loads| loads.call1((data,))) {
        Ok(v) => v.into_ptr(),
        Err(e) => raise(e),
    }
}

unsafe extern "C" fn me_repr(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: `obj` is a MessageEvent; the format takes four objects for its four %R.
    unsafe {
        let me = obj.cast::<RawMessageEvent>();
        ffi::PyUnicode_FromFormat(
            c"MessageEvent(type=%R, data=%R, last_event_id=%R, origin=%R)".as_ptr(),
            (*me).event_type,
            (*me).data,
            (*me).last_event_id,
            (*me).origin,
        )
    }
}

unsafe extern "C" fn me_richcompare(
    a: *mut PyObject,
    b: *mut PyObject,
    op: c_int,
) -> *mut PyObject {
    // SAFETY: CPython passes two live objects; the field reads happen only when both are
    // MessageEvents.
    unsafe {
        let tp = message_event_type();
        if (op != ffi::Py_EQ && op != ffi::Py_NE) || ffi::Py_TYPE(a) != tp || ffi::Py_TYPE(b) != tp
        {
            let ni = ffi::Py_NotImplemented();
            ffi::Py_INCREF(ni);
            return ni;
        }
        let (x, y) = (a.cast::<RawMessageEvent>(), b.cast::<RawMessageEvent>());
        let mut equal = true;
        for (p, q) in [
            ((*x).event_type, (*y).event_type),
            ((*x).data, (*y).data),
            ((*x).last_event_id, (*y).last_event_id),
            ((*x).origin, (*y).origin),
        ] {
            match ffi::PyObject_RichCompareBool(p, q, ffi::Py_EQ) {
                1 => {}
                0 => {
                    equal = false;
                    break;
                }
                _ => return null_mut(),
            }
        }
        ffi::PyBool_FromLong((equal == (op == ffi::Py_EQ)).into())
    }
}

// ---------------------------------------------------------------------------------------------
// BatchSlot.

#[repr(C)]
struct RawSlot {
    ob_base: PyObject,
    /// A list, or null when there is nothing to hand out.
    batch: *mut PyObject,
    next: Py_ssize_t,
}

unsafe extern "C" fn slot_new(
    tp: *mut PyTypeObject,
    _args: *mut PyObject,
    _kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: GIL held; `tp` is BatchSlot (not subclassable).
    unsafe {
        let s = alloc_plain::<RawSlot>(tp);
        if !s.is_null() {
            (*s).batch = null_mut();
            (*s).next = 0;
        }
        s.cast()
    }
}

unsafe extern "C" fn slot_dealloc(obj: *mut PyObject) {
    // SAFETY: last reference gone; `batch` is owned or null.
    unsafe {
        let s = obj.cast::<RawSlot>();
        if !(*s).batch.is_null() {
            ffi::Py_DECREF((*s).batch);
        }
        free_plain(obj);
    }
}

/// `slot.feed(batch)`: hands out `batch[1:]` next and returns `batch[0]` (None when empty).
unsafe extern "C" fn slot_feed(obj: *mut PyObject, batch: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `obj` is a BatchSlot; `batch` a borrowed reference.
    unsafe {
        if ffi::PyList_Check(batch) == 0 {
            return raise(PyTypeError::new_err("BatchSlot.feed() takes a list"));
        }
        let s = obj.cast::<RawSlot>();
        let old = (*s).batch;
        ffi::Py_INCREF(batch);
        (*s).batch = batch;
        (*s).next = 0;
        if !old.is_null() {
            ffi::Py_DECREF(old);
        }
        let first = slot_take(s);
        if first.is_null() {
            return new_none();
        }
        first
    }
}

/// The next event of the slot's batch (a new reference), or null (no error set) when the
/// batch is used up (or was emptied by `close()`), in which case the slot lets go of it.
unsafe fn slot_take(s: *mut RawSlot) -> *mut PyObject {
    // SAFETY: `s` is a live BatchSlot; `batch` is a list or null; GIL held.
    unsafe {
        let batch = (*s).batch;
        if batch.is_null() {
            return null_mut();
        }
        let i = (*s).next;
        if i < ffi::PyList_Size(batch) {
            let item = ffi::PyList_GetItem(batch, i);
            ffi::Py_INCREF(item);
            (*s).next = i + 1;
            return item;
        }
        (*s).batch = null_mut();
        ffi::Py_DECREF(batch);
        null_mut()
    }
}

// ---------------------------------------------------------------------------------------------
// SyncIter / AsyncIter.

#[repr(C)]
struct RawIter {
    ob_base: PyObject,
    /// The generator (SyncIter) or async generator (AsyncIter) that does the real work.
    source: *mut PyObject,
    /// `source.__next__` / `source.__anext__`, bound.
    next: *mut PyObject,
    slot: *mut PyObject,
    /// AsyncIter: the reusable `Ready` (or null).
    ready: *mut PyObject,
}

unsafe fn iter_new(
    tp: *mut PyTypeObject,
    args: *mut PyObject,
    next_name: &'static CStr,
) -> *mut PyObject {
    // SAFETY: GIL held; `args` is a tuple; `tp` is one of our GC iterator types.
    unsafe {
        if ffi::PyTuple_Size(args) != 2 {
            return raise(PyTypeError::new_err("expected (generator, slot)"));
        }
        let source = ffi::PyTuple_GetItem(args, 0);
        let slot = ffi::PyTuple_GetItem(args, 1);
        if ffi::Py_TYPE(slot) != BATCH_SLOT.load(Ordering::Relaxed) {
            return raise(PyTypeError::new_err("the second argument must be a BatchSlot"));
        }
        let next = ffi::PyObject_GetAttrString(source, next_name.as_ptr());
        if next.is_null() {
            return null_mut();
        }
        let it = ffi::PyType_GenericAlloc(tp, 0).cast::<RawIter>();
        if it.is_null() {
            ffi::Py_DECREF(next);
            return null_mut();
        }
        ffi::Py_INCREF(source);
        ffi::Py_INCREF(slot);
        (*it).source = source;
        (*it).next = next;
        (*it).slot = slot;
        (*it).ready = null_mut();
        it.cast()
    }
}

unsafe extern "C" fn sync_new(
    tp: *mut PyTypeObject,
    args: *mut PyObject,
    _kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: see iter_new.
    unsafe { iter_new(tp, args, c"__next__") }
}

unsafe extern "C" fn async_new(
    tp: *mut PyTypeObject,
    args: *mut PyObject,
    _kwargs: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: see iter_new.
    unsafe { iter_new(tp, args, c"__anext__") }
}

unsafe extern "C" fn iter_traverse(
    obj: *mut PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: called by the collector on a live iterator; null fields are skipped.
    unsafe {
        let it = obj.cast::<RawIter>();
        for p in [(*it).source, (*it).next, (*it).slot, (*it).ready] {
            if !p.is_null() {
                let r = visit(p, arg);
                if r != 0 {
                    return r;
                }
            }
        }
        // Heap types' instances must visit their type.
        visit(ffi::Py_TYPE(obj).cast(), arg)
    }
}

unsafe extern "C" fn iter_clear(obj: *mut PyObject) -> c_int {
    // SAFETY: GIL held; each field is owned or null, and is nulled before its release.
    unsafe {
        let it = obj.cast::<RawIter>();
        for p in
            [&raw mut (*it).source, &raw mut (*it).next, &raw mut (*it).slot, &raw mut (*it).ready]
        {
            let v = *p;
            if !v.is_null() {
                *p = null_mut();
                ffi::Py_DECREF(v);
            }
        }
        0
    }
}

unsafe extern "C" fn iter_dealloc(obj: *mut PyObject) {
    // SAFETY: last reference gone; allocated by PyType_GenericAlloc of a GC heap type.
    unsafe {
        ffi::PyObject_GC_UnTrack(obj.cast());
        iter_clear(obj);
        let tp = ffi::Py_TYPE(obj);
        ffi::PyObject_GC_Del(obj.cast());
        ffi::Py_DECREF(tp.cast());
    }
}

unsafe extern "C" fn self_iter(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: a live object; returns a new reference to it.
    unsafe {
        ffi::Py_INCREF(obj);
    }
    obj
}

unsafe extern "C" fn sync_next(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `obj` is a SyncIter (fields null only after tp_clear).
    unsafe {
        let it = obj.cast::<RawIter>();
        if (*it).slot.is_null() || (*it).next.is_null() {
            return null_mut();
        }
        let ev = slot_take((*it).slot.cast());
        if !ev.is_null() {
            return ev;
        }
        // The generator's `__next__`: its value, or null with StopIteration (or another error)
        // set, which is what tp_iternext returns too.
        ffi::PyObject_CallObject((*it).next, null_mut())
    }
}

unsafe extern "C" fn iter_close(obj: *mut PyObject, _: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `obj` is a SyncIter.
    unsafe {
        let it = obj.cast::<RawIter>();
        if (*it).source.is_null() {
            return new_none();
        }
        ffi::PyObject_CallMethod((*it).source, c"close".as_ptr(), null::<c_char>())
    }
}

unsafe extern "C" fn async_aclose(obj: *mut PyObject, _: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `obj` is an AsyncIter.
    unsafe {
        let it = obj.cast::<RawIter>();
        if (*it).source.is_null() {
            return raise(PyValueError::new_err("the iterator was cleared"));
        }
        ffi::PyObject_CallMethod((*it).source, c"aclose".as_ptr(), null::<c_char>())
    }
}

unsafe extern "C" fn async_anext(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held; `obj` is an AsyncIter (fields null only after tp_clear).
    unsafe {
        let it = obj.cast::<RawIter>();
        if (*it).slot.is_null() || (*it).next.is_null() {
            return raise(PyValueError::new_err("the iterator was cleared"));
        }
        let ev = slot_take((*it).slot.cast());
        if ev.is_null() {
            // The async generator's `__anext__()` awaitable.
            return ffi::PyObject_CallObject((*it).next, null_mut());
        }
        let mut r = (*it).ready;
        if r.is_null() || ffi::Py_REFCNT(r) != 1 {
            // Somebody else still holds the last one (or there is none yet): a new one.
            let fresh = alloc_plain::<RawReady>(READY.load(Ordering::Relaxed));
            if fresh.is_null() {
                ffi::Py_DECREF(ev);
                return null_mut();
            }
            (*fresh).value = null_mut();
            if !r.is_null() {
                ffi::Py_DECREF(r);
            }
            r = fresh.cast();
            (*it).ready = r;
        }
        let rr = r.cast::<RawReady>();
        let old = (*rr).value;
        (*rr).value = ev;
        if !old.is_null() {
            ffi::Py_DECREF(old);
        }
        ffi::Py_INCREF(r);
        r
    }
}

// ---------------------------------------------------------------------------------------------
// Ready.

#[repr(C)]
struct RawReady {
    ob_base: PyObject,
    /// The result (owned), or null once taken.
    value: *mut PyObject,
}

unsafe extern "C" fn ready_dealloc(obj: *mut PyObject) {
    // SAFETY: last reference gone; `value` is owned or null.
    unsafe {
        let r = obj.cast::<RawReady>();
        if !(*r).value.is_null() {
            ffi::Py_DECREF((*r).value);
        }
        free_plain(obj);
    }
}

/// Takes the value (a new reference), or None if it was taken already.
unsafe fn ready_take(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: `obj` is a Ready; GIL held.
    unsafe {
        let r = obj.cast::<RawReady>();
        let v = (*r).value;
        if v.is_null() {
            return new_none();
        }
        (*r).value = null_mut();
        v
    }
}

/// `am_send` (3.10+): completes at once with the value.
unsafe extern "C" fn ready_send(
    obj: *mut PyObject,
    _arg: *mut PyObject,
    result: *mut *mut PyObject,
) -> c_int {
    // SAFETY: CPython passes a valid result pointer.
    unsafe {
        *result = ready_take(obj);
    }
    0 // PYGEN_RETURN
}

/// `__next__` (the 3.9 path): raises StopIteration(value), the "return value" of an iterator
/// that an `await` reads.
unsafe extern "C" fn ready_next(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: GIL held.
    unsafe {
        let v = ready_take(obj);
        ffi::PyErr_SetObject(ffi::PyExc_StopIteration, v);
        ffi::Py_DECREF(v);
    }
    null_mut()
}
