//! [`AgentPhilosophy`]: the reasoning style of an agent, used as the `philosophy` label.
//!
//! ```
//! use agentcore_telemetry::AgentPhilosophy;
//!
//! let labels: Vec<&str> = AgentPhilosophy::ALL.iter().map(|p| p.as_str()).collect();
//! assert_eq!(labels, ["react", "chain_of_thought", "multi_agent", "autonomous"]);
//! ```

use std::fmt;
use std::str::FromStr;

/// The reasoning style of an agent. Its label value is a `&'static str`, so labelling a series
/// with it allocates nothing.
///
/// ```
/// use agentcore_telemetry::AgentPhilosophy;
///
/// assert_eq!(AgentPhilosophy::ChainOfThought.as_str(), "chain_of_thought");
/// assert_eq!(AgentPhilosophy::MultiAgent.to_string(), "multi_agent");
/// assert_eq!("react".parse::<AgentPhilosophy>(), Ok(AgentPhilosophy::React));
/// assert!("reactive".parse::<AgentPhilosophy>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentPhilosophy {
    /// Reason + act loops (`react`).
    React,
    /// Chain-of-thought reasoning (`chain_of_thought`).
    ChainOfThought,
    /// Several cooperating agents (`multi_agent`).
    MultiAgent,
    /// Goal-driven autonomous agents (`autonomous`).
    Autonomous,
}

impl AgentPhilosophy {
    /// Every philosophy, in declaration order.
    ///
    /// ```
    /// use agentcore_telemetry::AgentPhilosophy;
    ///
    /// assert_eq!(AgentPhilosophy::ALL.len(), 4);
    /// ```
    pub const ALL: [AgentPhilosophy; 4] = [
        AgentPhilosophy::React,
        AgentPhilosophy::ChainOfThought,
        AgentPhilosophy::MultiAgent,
        AgentPhilosophy::Autonomous,
    ];

    /// The label value: `react`, `chain_of_thought`, `multi_agent` or `autonomous`.
    ///
    /// ```
    /// use agentcore_telemetry::AgentPhilosophy;
    ///
    /// assert_eq!(AgentPhilosophy::Autonomous.as_str(), "autonomous");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentPhilosophy::React => "react",
            AgentPhilosophy::ChainOfThought => "chain_of_thought",
            AgentPhilosophy::MultiAgent => "multi_agent",
            AgentPhilosophy::Autonomous => "autonomous",
        }
    }
}

impl fmt::Display for AgentPhilosophy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown philosophy name.
///
/// ```
/// use agentcore_telemetry::agent::ParsePhilosophyError;
/// use agentcore_telemetry::AgentPhilosophy;
///
/// let err: ParsePhilosophyError = "zen".parse::<AgentPhilosophy>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown agent philosophy \"zen\": expected react, chain_of_thought, multi_agent or autonomous");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePhilosophyError {
    input: String,
}

impl fmt::Display for ParsePhilosophyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown agent philosophy {:?}: expected react, chain_of_thought, multi_agent or autonomous",
            self.input
        )
    }
}

impl std::error::Error for ParsePhilosophyError {}

impl FromStr for AgentPhilosophy {
    type Err = ParsePhilosophyError;

    /// Parses the label value (exactly as [`AgentPhilosophy::as_str`] renders it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentPhilosophy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParsePhilosophyError { input: s.into() })
    }
}
