//! Reading and the work on its batches on threads of their own, ahead of the caller.

use super::{BoundedReader, RawBatch, ReadError};
use rdkafka::consumer::BaseConsumer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

/// A reader on its own thread, up to `ahead` batches ahead of the caller, so that reading and
/// the caller's work run on two cores. `work` turns each batch into what the caller takes
/// (decoding it, say) on that thread too. Batches arrive in the reader's order; dropping it
/// stops the thread.
pub struct Prefetch<T> {
    /// `None` only while dropping.
    batches: Option<Receiver<Result<T, ReadError>>>,
    consumer: Arc<BaseConsumer>,
    cancel: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// A batch taken by `ready`, handed out by the next `next_batch`.
    early: Option<Result<T, ReadError>>,
}

/// Raw batches read ahead of the work: reading goes on while a batch is worked on.
const RAW_AHEAD: usize = 2;

impl<T: Send + 'static> Prefetch<T> {
    /// Reads on one thread and does `work` on another, so that taking messages from
    /// librdkafka, the work (decoding) and the caller's own work (writing) overlap.
    pub fn start(
        mut reader: BoundedReader,
        ahead: usize,
        mut work: impl FnMut(RawBatch) -> T + Send + 'static,
    ) -> Prefetch<T> {
        let (send_raw, raw) = sync_channel(RAW_AHEAD);
        let (send, batches) = sync_channel(ahead.max(1));
        let (consumer, cancel) = (reader.consumer.clone(), reader.cancel.clone());
        let span = tracing::Span::current();
        let read_span = span.clone();
        let reading = std::thread::spawn(move || {
            let _entered = read_span.enter();
            loop {
                let next = reader.next_batch().transpose();
                let end = !matches!(next, Some(Ok(_)));
                if let Some(item) = next
                    && send_raw.send(item).is_err()
                {
                    return;
                }
                // Time spent waiting for the caller is not the broker's silence.
                reader.last_data = Instant::now();
                if end {
                    return;
                }
            }
        });
        let working = std::thread::spawn(move || {
            let _entered = span.enter();
            // Ends when the reader is done (its sender dropped) or the caller is gone.
            for item in raw.iter() {
                if send.send(item.map(&mut work)).is_err() {
                    return;
                }
            }
        });
        Prefetch {
            batches: Some(batches),
            consumer,
            cancel,
            threads: vec![reading, working],
            early: None,
        }
    }

    /// Whether the next batch is here already, so `next_batch` would not wait.
    pub fn ready(&mut self) -> bool {
        if self.early.is_none()
            && let Some(batches) = &self.batches
        {
            self.early = batches.try_recv().ok();
        }
        self.early.is_some()
    }

    /// As `BoundedReader::next_batch`, with the work done.
    pub fn next_batch(&mut self) -> Result<Option<T>, ReadError> {
        if let Some(batch) = self.early.take() {
            return batch.map(Some);
        }
        match &self.batches {
            Some(batches) => batches.recv().ok().transpose(),
            None => Ok(None),
        }
    }

    pub fn consumer(&self) -> &BaseConsumer {
        &self.consumer
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        // A send into a closed channel fails, so each thread ends even if it was blocked:
        // the worker's send fails first, and its end closes the reader's channel.
        drop(self.batches.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
