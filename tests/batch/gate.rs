//! A memory adapter whose writes are counted and can be held until the test releases them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use iotmc_adapter::testkit::memory::MemoryAdapter;
use iotmc_adapter::{
    ActionOutcome, ActionRequest, Adapter, DeviceBinding, DeviceLink, FirmwareTarget, Identity,
    LinkError, LinkEvent, LocatedError, LogSource, Profile, Readings, Resource,
};
use tokio::sync::{Semaphore, watch};

use crate::common::HANG_GUARD;

/// What the test sees of the writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Writes that reached the link.
    pub(crate) started: usize,
    /// Writes the link answered.
    pub(crate) finished: usize,
    /// Started, not finished.
    pub(crate) in_flight: usize,
    /// The most in flight at once.
    pub(crate) max_in_flight: usize,
}

#[derive(Debug)]
pub(crate) struct Gate {
    counts: watch::Sender<Counts>,
    /// When set, each write waits for a permit of `permits`.
    pub(crate) held: AtomicBool,
    pub(crate) permits: Semaphore,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self {
            counts: watch::channel(Counts::default()).0,
            held: AtomicBool::new(false),
            permits: Semaphore::new(0),
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        *self.counts.borrow()
    }

    /// Waits (up to the hang guard) until the counts satisfy `f`.
    pub(crate) async fn wait_for(&self, what: &str, f: impl Fn(&Counts) -> bool) -> Counts {
        let mut counts = self.counts.subscribe();
        *tokio::time::timeout(HANG_GUARD, counts.wait_for(|c| f(c)))
            .await
            .unwrap_or_else(|_| panic!("waiting for {what}: {:?}", self.counts()))
            .unwrap()
    }

    async fn write(&self, inner: &dyn DeviceLink, values: &Readings) -> Result<(), LinkError> {
        self.counts.send_modify(|c| {
            c.started += 1;
            c.in_flight += 1;
            c.max_in_flight = c.max_in_flight.max(c.in_flight);
        });
        if self.held.load(Ordering::SeqCst) {
            self.permits.acquire().await.unwrap().forget();
        }
        let result = inner.write(values).await;
        self.counts.send_modify(|c| {
            c.finished += 1;
            c.in_flight -= 1;
        });
        result
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug)]
pub(crate) struct GatedAdapter {
    pub(crate) memory: Arc<MemoryAdapter>,
    pub(crate) gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedLink {
    inner: Arc<dyn DeviceLink>,
    gate: Arc<Gate>,
}

// The traits are `#[async_trait]`; this crate does not depend on the macro, so the methods
// are written as it expands them.
impl Adapter for GatedAdapter {
    fn protocol(&self) -> &'static str {
        self.memory.protocol()
    }

    fn validate_profile(&self, profile: &Profile) -> Result<(), Vec<LocatedError>> {
        self.memory.validate_profile(profile)
    }

    fn profile_section_schema(&self) -> schemars::Schema {
        self.memory.profile_section_schema()
    }

    fn validate_address(&self, address: &str) -> Result<(), String> {
        self.memory.validate_address(address)
    }

    fn resources(&self, address: &str) -> Vec<Resource> {
        self.memory.resources(address)
    }

    fn attach<'a, 'b, 't>(
        &'a self,
        binding: &'b DeviceBinding,
    ) -> Boxed<'t, Result<Arc<dyn DeviceLink>, LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        Box::pin(async move {
            let inner = self.memory.attach(binding).await?;
            Ok(Arc::new(GatedLink {
                inner,
                gate: Arc::clone(&self.gate),
            }) as Arc<dyn DeviceLink>)
        })
    }
}

impl DeviceLink for GatedLink {
    fn identify<'a, 't>(&'a self) -> Boxed<'t, Result<Identity, LinkError>>
    where
        'a: 't,
        Self: 't,
    {
        self.inner.identify()
    }

    fn read<'a, 'b, 't>(&'a self, names: &'b [String]) -> Boxed<'t, Result<Readings, LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        self.inner.read(names)
    }

    fn write<'a, 'b, 't>(&'a self, values: &'b Readings) -> Boxed<'t, Result<(), LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        Box::pin(self.gate.write(self.inner.as_ref(), values))
    }

    fn invoke<'a, 'b, 't>(
        &'a self,
        action: &'b ActionRequest,
    ) -> Boxed<'t, Result<ActionOutcome, LinkError>>
    where
        'a: 't,
        'b: 't,
        Self: 't,
    {
        self.inner.invoke(action)
    }

    fn events(&self) -> tokio::sync::broadcast::Receiver<LinkEvent> {
        self.inner.events()
    }

    fn firmware(&self) -> Option<&dyn FirmwareTarget> {
        self.inner.firmware()
    }

    fn logs(&self) -> Option<&dyn LogSource> {
        self.inner.logs()
    }
}
