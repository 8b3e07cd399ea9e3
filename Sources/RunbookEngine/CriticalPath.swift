import Foundation
import Synchronization

/// When one action of a run ran, and what it had to wait for.
struct ActionTiming: Sendable, Hashable {
  /// `step/action`.
  let key: String
  /// When its own work began (after the waits for what it needs and for a free slot).
  let started: Date
  let finished: Date
  /// What it waited for: `step/action` keys, and `step/` for every action of a step.
  let needs: Set<String>
  /// Its step ran after the steps before it (one step at a time): whatever finished before it
  /// started held it up.
  let afterEverythingBefore: Bool
}

/// The chain of actions that set a run's wall time: from the action that finished last, back
/// through the dependency of each that finished last, to one that waited for nothing of the run.
/// Each link is an action and how long it ran; the gaps between links are time spent waiting for a
/// free slot (`--jobs`) or asking the operator.
package struct CriticalPath: Sendable, Hashable, Codable {
  package struct Link: Sendable, Hashable, Codable {
    /// `step/action`.
    package var action: String
    package var seconds: Double
  }

  package var links: [Link]
  /// From the first link's start to the last one's end.
  package var seconds: Double

  /// `network/vpc 2.1s -> rds/instance 4.0s -> rds/instance-available 11m50s`.
  package var description: String {
    links.map { "\($0.action) \(Self.duration($0.seconds))" }.joined(separator: " -> ")
  }

  /// `0.4s`, `12s`, `3m05s`, `1h02m`.
  package static func duration(_ seconds: Double) -> String {
    if seconds < 10 { return String(format: "%.1fs", seconds) }
    let whole = Int(seconds.rounded())
    if whole < 60 { return "\(whole)s" }
    if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
    return String(format: "%dh%02dm", whole / 3600, whole % 3600 / 60)
  }

  /// The critical path through `timings`; nil when no action ran.
  static func find(_ timings: [ActionTiming]) -> CriticalPath? {
    guard var current = timings.max(by: { $0.finished < $1.finished }) else { return nil }
    // A dependency counts when it finished before the action started (clocks of one process:
    // a few milliseconds of slack for the bookkeeping in between).
    let slack = 0.05
    var chain = [current]
    var seen: Set<String> = [current.key]
    while true {
      let candidates = timings.filter { other in
        !seen.contains(other.key)
          && other.finished.timeIntervalSince(current.started) <= slack
          && (current.afterEverythingBefore || current.needs.contains(other.key)
            || current.needs.contains { $0.hasSuffix("/") && other.key.hasPrefix($0) })
      }
      guard let previous = candidates.max(by: { $0.finished < $1.finished }) else { break }
      chain.append(previous)
      seen.insert(previous.key)
      current = previous
    }
    chain.reverse()
    return CriticalPath(
      links: chain.map { Link(action: $0.key, seconds: $0.finished.timeIntervalSince($0.started)) },
      seconds: chain.last!.finished.timeIntervalSince(chain.first!.started))
  }
}

/// The timings of a run's actions, as they finish.
final class RunTimings: Sendable {
  private let timings = Mutex<[ActionTiming]>([])

  func record(_ timing: ActionTiming) { timings.withLock { $0.append(timing) } }
  func reset() { timings.withLock { $0 = [] } }
  var criticalPath: CriticalPath? { CriticalPath.find(timings.withLock { $0 }) }
}
