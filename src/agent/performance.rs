//! Performance: cache accesses and garbage collection.

use super::builtin::BUILTIN_METRICS;
use super::MetricsCollector;

impl MetricsCollector {
    /// A cache access: counts `agentcore_cache_hits_total{cache_type}` or
    /// `agentcore_cache_misses_total{cache_type}` and sets `agentcore_cache_size{cache_type}` to
    /// `current_size`.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_cache_access("tool_metadata", true, 150);
    /// c.record_cache_access("tool_metadata", false, 151);
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_cache_hits_total{cache_type=\"tool_metadata\"} 1\n"));
    /// assert!(text.contains("agentcore_cache_misses_total{cache_type=\"tool_metadata\"} 1\n"));
    /// assert!(text.contains("agentcore_cache_size{cache_type=\"tool_metadata\"} 151\n"));
    /// ```
    #[inline]
    pub fn record_cache_access(&self, cache_type: &str, hit: bool, current_size: usize) {
        let m = &self.inner.m;
        let counter = if hit {
            &m.cache_hits_total
        } else {
            &m.cache_misses_total
        };
        if let Some(c) = self.series(counter, &[cache_type]) {
            c.inc();
        }
        if let Some(g) = self.series(&m.cache_size, &[cache_type]) {
            g.set(current_size as f64);
        }
    }

    /// A garbage collection released `memory_released_mb`: counts
    /// `agentcore_gc_collections_total` and adds the amount to
    /// `agentcore_memory_released_mb_total`. A negative, NaN or infinite amount is refused; the
    /// collection is still counted.
    ///
    /// ```
    /// use agentcore_telemetry::MetricsCollector;
    ///
    /// let c = MetricsCollector::new();
    /// c.record_gc_collection(25.5);
    /// c.record_gc_collection(-1.0); // amount refused and counted
    /// let text = c.encode_text();
    /// assert!(text.contains("agentcore_gc_collections_total 2\n"));
    /// assert!(text.contains("agentcore_memory_released_mb_total 25.5\n"));
    /// ```
    #[inline]
    pub fn record_gc_collection(&self, memory_released_mb: f64) {
        let m = &self.inner.m;
        m.gc_collections_total.inc();
        if m.memory_released_mb_total.add(memory_released_mb).is_err() {
            self.reject(BUILTIN_METRICS[18].name);
        }
    }
}
