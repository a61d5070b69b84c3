//! A hashed timer wheel driven by the caller's `now`.
//!
//! Owns every armed timer of the engine: response timeouts, stagger gaps, RFQ expiries,
//! markout horizons. Arming and cancelling are O(1) (an intrusive doubly-linked list per
//! slot, entries in one pre-sized arena); `advance` visits only the ticks that have passed.
//! Capacity is fixed at construction: a full wheel refuses to arm (the caller rejects the
//! work that needed the timer) instead of growing. It never reads the clock and never
//! allocates after construction. Firing order is deterministic (by tick, then by arming
//! order within a tick), which replay relies on.
//!
//! A timer fires on the first `advance(now)` whose `now` is past the end of the tick holding
//! its deadline: never early, and late by less than one tick plus the caller's polling delay.

use crate::time::Nanos;

const NIL: u32 = u32::MAX;

/// Handle to an armed timer. Stale after the timer fires or is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    deadline: Nanos,
    payload: Option<T>,
    prev: u32,
    next: u32,
    slot: u32,
    generation: u32,
}

/// Arming failed: every timer slot is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelFull;

/// The wheel. `T` is the small, copyable payload handed back when a timer fires.
#[derive(Debug)]
pub struct TimerWheel<T: Copy> {
    entries: Vec<Entry<T>>,
    heads: Vec<u32>,
    free_head: u32,
    tick_ns: u64,
    mask: u64,
    /// Every tick below this one has been processed.
    next_tick: u64,
    armed: usize,
}

impl<T: Copy> TimerWheel<T> {
    /// `slots` is rounded up to a power of two; `tick` is the resolution; `capacity` is the
    /// maximum number of armed timers; `start` is the instant the wheel begins at.
    pub fn new(slots: usize, tick: Nanos, capacity: usize, start: Nanos) -> TimerWheel<T> {
        assert!(tick.0 > 0, "timer tick must be positive");
        assert!(capacity < NIL as usize, "timer capacity too large");
        let slots = slots.max(2).next_power_of_two();
        let entries = (0..capacity)
            .map(|i| Entry {
                deadline: Nanos(0),
                payload: None,
                prev: NIL,
                next: if i + 1 < capacity {
                    (i + 1) as u32
                } else {
                    NIL
                },
                slot: NIL,
                generation: 0,
            })
            .collect();
        TimerWheel {
            entries,
            heads: vec![NIL; slots],
            free_head: if capacity == 0 { NIL } else { 0 },
            tick_ns: tick.0,
            mask: (slots - 1) as u64,
            next_tick: start.0 / tick.0,
            armed: 0,
        }
    }

    pub fn armed(&self) -> usize {
        self.armed
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Arms a timer for `deadline` (a deadline already past fires on the next `advance`).
    pub fn arm(&mut self, deadline: Nanos, payload: T) -> Result<TimerId, WheelFull> {
        if self.free_head == NIL {
            return Err(WheelFull);
        }
        let index = self.free_head;
        let tick = (deadline.0 / self.tick_ns).max(self.next_tick);
        let slot = (tick & self.mask) as u32;
        let head = self.heads[slot as usize];
        let e = &mut self.entries[index as usize];
        self.free_head = e.next;
        e.deadline = deadline;
        e.payload = Some(payload);
        e.prev = NIL;
        e.next = head;
        e.slot = slot;
        let generation = e.generation;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[slot as usize] = index;
        self.armed += 1;
        Ok(TimerId { index, generation })
    }

    /// Cancels an armed timer and returns its payload; `None` if it already fired or was
    /// cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let e = self.entries.get(id.index as usize)?;
        if e.generation != id.generation || e.payload.is_none() {
            return None;
        }
        Some(self.release(id.index))
    }

    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, slot, ..
        } = self.entries[index as usize];
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            self.heads[slot as usize] = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    fn release(&mut self, index: u32) -> T {
        self.unlink(index);
        let free_head = self.free_head;
        let e = &mut self.entries[index as usize];
        let payload = e
            .payload
            .take()
            .expect("released timer entry had no payload");
        e.generation = e.generation.wrapping_add(1);
        e.next = free_head;
        e.prev = NIL;
        e.slot = NIL;
        self.free_head = index;
        self.armed -= 1;
        payload
    }

    /// Fires, in order, every timer whose tick has fully passed at `now`, calling `fire` with
    /// its id and payload. Returns how many fired. Bounded: at most one pass over the wheel's
    /// slots per call, whatever the gap since the last call.
    pub fn advance(&mut self, now: Nanos, mut fire: impl FnMut(TimerId, T)) -> usize {
        let now_tick = now.0 / self.tick_ns; // ticks < now_tick are complete
        if now_tick <= self.next_tick {
            return 0;
        }
        if self.armed == 0 {
            // Nothing can fire: skip the slots instead of visiting up to all of them (the
            // first event after an idle second would otherwise scan the whole wheel, and
            // `next_wakeup` gives the event loop no reason to tick an empty wheel).
            self.next_tick = now_tick;
            return 0;
        }
        let span = (now_tick - self.next_tick).min(self.heads.len() as u64);
        let mut fired = 0;
        for k in 0..span {
            let tick = self.next_tick + k;
            let slot = (tick & self.mask) as usize;
            // Entries are pushed at the head; fire oldest first by walking from the tail.
            let mut tail = self.heads[slot];
            if tail == NIL {
                continue;
            }
            while self.entries[tail as usize].next != NIL {
                tail = self.entries[tail as usize].next;
            }
            let mut cur = tail;
            while cur != NIL {
                let prev = self.entries[cur as usize].prev;
                let e = self.entries[cur as usize];
                // Fire if its deadline's tick is complete (it may be a later round otherwise).
                if e.deadline.0 / self.tick_ns < now_tick {
                    let id = TimerId {
                        index: cur,
                        generation: e.generation,
                    };
                    let payload = self.release(cur);
                    fire(id, payload);
                    fired += 1;
                }
                cur = prev;
            }
        }
        self.next_tick = now_tick;
        fired
    }

    /// The instant by which the caller should call `advance` again: the end of the first
    /// non-empty tick within the next 64 ticks, or the end of the 64th tick when none is
    /// (to look further), or `None` with no timer armed.
    pub fn next_wakeup(&self) -> Option<Nanos> {
        if self.armed == 0 {
            return None;
        }
        for k in 0..64u64 {
            let tick = self.next_tick + k;
            if self.heads[(tick & self.mask) as usize] != NIL {
                return Some(Nanos((tick + 1) * self.tick_ns));
            }
        }
        Some(Nanos((self.next_tick + 64) * self.tick_ns))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_empty_wheel_jumps_over_idle_time_and_still_fires_later_timers() {
        let t0 = Nanos::from_secs(1_000);
        let mut w: TimerWheel<u8> = TimerWheel::new(16, Nanos::from_millis(1), 4, t0);
        // Idle for longer than a whole round of the wheel.
        assert_eq!(w.advance(Nanos(t0.0 + 40_000_000), |_, _| {}), 0);
        let now = Nanos(t0.0 + 40_000_000);
        w.arm(now.add_millis(5), 7).unwrap();
        let mut fired = Vec::new();
        w.advance(now.add_millis(4), |_, p| fired.push(p));
        assert!(fired.is_empty(), "not early");
        w.advance(now.add_millis(6), |_, p| fired.push(p));
        assert_eq!(fired, vec![7]);
    }
    use super::*;

    fn ms(v: u64) -> Nanos {
        Nanos::from_millis(v)
    }

    fn run(w: &mut TimerWheel<u32>, now: Nanos) -> Vec<u32> {
        let mut out = Vec::new();
        w.advance(now, |_, p| out.push(p));
        out
    }

    #[test]
    fn fires_never_early_and_in_deadline_then_arming_order() {
        let mut w = TimerWheel::new(16, ms(1), 8, ms(0));
        w.arm(ms(5), 1).unwrap();
        w.arm(ms(3), 2).unwrap();
        w.arm(ms(3), 3).unwrap();
        assert_eq!(
            run(&mut w, ms(3)),
            Vec::<u32>::new(),
            "tick 3 not complete at 3 ms"
        );
        assert!(
            run(&mut w, Nanos(ms(4).0 - 1)).is_empty(),
            "tick 3 ends at 4 ms"
        );
        assert_eq!(run(&mut w, ms(4)), vec![2, 3]);
        assert_eq!(run(&mut w, ms(10)), vec![1]);
        assert_eq!(w.armed(), 0);
    }

    #[test]
    fn deadlines_beyond_one_revolution_wait_their_round() {
        let mut w = TimerWheel::new(8, ms(1), 8, ms(0));
        w.arm(ms(20), 7).unwrap(); // slot 4, two revolutions later
        assert!(run(&mut w, ms(6)).is_empty());
        assert!(run(&mut w, ms(14)).is_empty());
        assert_eq!(run(&mut w, ms(21)), vec![7]);
    }

    #[test]
    fn a_large_time_jump_fires_everything_due_in_one_bounded_pass() {
        let mut w = TimerWheel::new(8, ms(1), 64, ms(0));
        for i in 0..40 {
            w.arm(ms(u64::from(i) * 3), i).unwrap();
        }
        let fired = run(&mut w, ms(1_000_000));
        assert_eq!(fired.len(), 40);
        assert_eq!(w.armed(), 0);
    }

    #[test]
    fn cancel_is_exact_and_stale_ids_are_refused() {
        let mut w = TimerWheel::new(8, ms(1), 4, ms(0));
        let a = w.arm(ms(2), 1).unwrap();
        let b = w.arm(ms(2), 2).unwrap();
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None);
        assert_eq!(run(&mut w, ms(5)), vec![2]);
        assert_eq!(w.cancel(b), None, "fired timers cannot be cancelled");
        // the slot is reused; the old id must not cancel the new timer
        let c = w.arm(ms(9), 3).unwrap();
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.cancel(c), Some(3));
    }

    #[test]
    fn full_wheel_refuses_then_recovers() {
        let mut w = TimerWheel::new(8, ms(1), 2, ms(0));
        let a = w.arm(ms(1), 1).unwrap();
        w.arm(ms(1), 2).unwrap();
        assert_eq!(w.arm(ms(1), 3), Err(WheelFull));
        w.cancel(a);
        assert!(w.arm(ms(1), 4).is_ok());
    }

    #[test]
    fn past_deadlines_fire_on_next_advance() {
        let mut w = TimerWheel::new(8, ms(1), 2, ms(100));
        w.arm(ms(1), 9).unwrap();
        assert_eq!(run(&mut w, Nanos(ms(100).0 + 1)), Vec::<u32>::new());
        assert_eq!(run(&mut w, ms(101)), vec![9]);
    }

    #[test]
    fn next_wakeup_points_at_the_first_armed_tick() {
        let mut w: TimerWheel<u32> = TimerWheel::new(1024, ms(1), 4, ms(0));
        assert_eq!(w.next_wakeup(), None);
        w.arm(Nanos(ms(7).0 + 300), 1).unwrap();
        assert_eq!(w.next_wakeup(), Some(ms(8)));
        let mut far: TimerWheel<u32> = TimerWheel::new(1024, ms(1), 4, ms(0));
        far.arm(ms(500), 1).unwrap();
        assert_eq!(far.next_wakeup(), Some(ms(64)));
    }

    #[test]
    fn matches_a_sorted_reference_under_random_operations() {
        // Deterministic pseudo-random schedule (xorshift), checked against a simple model.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut w: TimerWheel<u32> = TimerWheel::new(64, ms(1), 256, ms(0));
        let mut model: Vec<(u64, u32, TimerId)> = Vec::new();
        let mut now = 0u64;
        for step in 0..5_000u32 {
            match rnd() % 4 {
                0 | 1 => {
                    let d = now + rnd() % 300;
                    if let Ok(id) = w.arm(ms(d), step) {
                        model.push((d, step, id));
                    }
                }
                2 if !model.is_empty() => {
                    let i = (rnd() as usize) % model.len();
                    let (_, p, id) = model.remove(i);
                    assert_eq!(w.cancel(id), Some(p));
                }
                _ => {
                    now += rnd() % 50;
                    let mut fired = run(&mut w, ms(now));
                    let mut due: Vec<u32> =
                        model.iter().filter(|m| m.0 < now).map(|m| m.1).collect();
                    model.retain(|m| m.0 >= now);
                    fired.sort_unstable();
                    due.sort_unstable();
                    assert_eq!(fired, due, "at now={now} ms");
                }
            }
        }
    }
}
