//! The bounded per-connection buffers: a read buffer and a write queue.
//!
//! Both have a hard limit fixed when the connection is created (or changed once, when the
//! handler learns which session a connection belongs to). Neither ever grows past its limit:
//! the read buffer is allocated once at its full size, and the write queue refuses a push that
//! would pass its limit. They do no I/O themselves.

/// A fixed-size read buffer holding the bytes the handler has not consumed yet, at the front.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: Vec<u8>,
    len: usize,
    /// A capacity change asked for while the bytes could not move (lent out, or too many
    /// held); applied as soon as they can.
    wanted_capacity: Option<usize>,
}

impl ReadBuffer {
    pub(crate) fn new(capacity_bytes: usize) -> ReadBuffer {
        assert!(capacity_bytes > 0, "read buffer capacity must be positive");
        ReadBuffer {
            buf: vec![0; capacity_bytes],
            len: 0,
            wanted_capacity: None,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The free space after the held bytes, to read into.
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Records `n` bytes read into `spare_mut()`.
    pub(crate) fn filled(&mut self, n: usize) {
        assert!(self.len + n <= self.buf.len(), "read past the buffer");
        self.len += n;
    }

    /// Moves the storage out (for the handler call) without allocating; `put_back` restores it.
    pub(crate) fn take(&mut self) -> (Vec<u8>, usize) {
        let len = std::mem::replace(&mut self.len, 0);
        (std::mem::take(&mut self.buf), len)
    }

    /// Restores the storage taken by `take`, minus the `consumed` bytes at the front.
    pub(crate) fn put_back(&mut self, buf: Vec<u8>, len: usize, consumed: usize) {
        self.buf = buf;
        self.len = len;
        let consumed = consumed.min(self.len);
        if consumed > 0 {
            self.buf.copy_within(consumed..self.len, 0);
            self.len -= consumed;
        }
        self.apply_wanted_capacity();
    }

    /// Forgets the held bytes (used while draining a closing connection).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Asks for a new capacity: applied now if the held bytes fit and the storage is not
    /// lent out, otherwise as soon as both hold.
    pub(crate) fn request_capacity(&mut self, capacity_bytes: usize) {
        if capacity_bytes > 0 {
            self.wanted_capacity = Some(capacity_bytes);
            self.apply_wanted_capacity();
        }
    }

    fn apply_wanted_capacity(&mut self) {
        let Some(wanted) = self.wanted_capacity else {
            return;
        };
        // An empty `buf` is lent out to the handler (capacity is never 0 otherwise).
        if self.buf.is_empty() || wanted < self.len {
            return;
        }
        if wanted != self.buf.len() {
            self.buf.resize(wanted, 0);
            self.buf.shrink_to_fit();
        }
        self.wanted_capacity = None;
    }
}

/// Bytes waiting for the socket to accept them, bounded by `limit_bytes`.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    buf: Vec<u8>,
    head: usize,
    limit_bytes: usize,
}

impl WriteQueue {
    pub(crate) fn new(limit_bytes: usize) -> WriteQueue {
        WriteQueue {
            buf: Vec::new(),
            head: 0,
            limit_bytes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    pub(crate) fn set_limit_bytes(&mut self, limit_bytes: usize) {
        self.limit_bytes = limit_bytes;
    }

    /// Appends `bytes`, or refuses (false, nothing appended) if the queue would pass its limit.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> bool {
        let new_len = self.len() + bytes.len();
        if new_len > self.limit_bytes {
            return false;
        }
        if self.buf.len() + bytes.len() > self.buf.capacity() && self.head > 0 {
            // Reclaim the consumed front before growing.
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            // Grow geometrically, but never to more than the limit.
            let target = (self.buf.capacity() * 2)
                .max(needed)
                .min(self.limit_bytes.max(needed));
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        true
    }

    /// The bytes to write next.
    pub(crate) fn front(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Drops `n` written bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed more than queued");
        self.head += n;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_queue_refuses_past_limit_and_keeps_order() {
        let mut q = WriteQueue::new(10);
        assert!(q.push(b"abcd"));
        assert!(q.push(b"efgh"));
        assert!(!q.push(b"ijk"), "11 bytes > limit 10");
        assert_eq!(q.front(), b"abcdefgh");
        q.consume(3);
        assert_eq!(q.front(), b"defgh");
        assert!(q.push(b"ijklm"));
        assert_eq!(q.front(), b"defghijklm");
        assert!(q.buf.capacity() <= 16, "capacity stays near the limit");
        q.consume(10);
        assert!(q.is_empty());
        assert_eq!(q.head, 0);
    }

    #[test]
    fn read_buffer_keeps_unconsumed_tail() {
        let mut r = ReadBuffer::new(8);
        r.spare_mut()[..5].copy_from_slice(b"hello");
        r.filled(5);
        let (buf, len) = r.take();
        assert_eq!(&buf[..len], b"hello");
        r.put_back(buf, len, 2);
        assert_eq!(r.len(), 3);
        let (buf, len) = r.take();
        assert_eq!(&buf[..len], b"llo");
        r.put_back(buf, len, 0);
        r.spare_mut()[..5].copy_from_slice(b"12345");
        r.filled(5);
        assert!(r.is_full());
        r.request_capacity(4);
        assert_eq!(r.capacity(), 8, "cannot shrink below the 8 held bytes");
        let (buf, len) = r.take();
        r.request_capacity(16);
        assert_eq!(r.capacity(), 0, "lent out: the change waits");
        r.put_back(buf, len, 6);
        assert_eq!(r.capacity(), 16, "applied once the storage is back");
        assert_eq!(r.len(), 2);
        let (buf, len) = r.take();
        assert_eq!(&buf[..len], b"45");
    }
}
