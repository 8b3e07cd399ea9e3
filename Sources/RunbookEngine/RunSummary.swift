import Foundation
import RunbookProcess
import RunbookState
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// What a run did.
package struct RunSummary: Sendable, Hashable {
  package var outcomes: [String: ActionOutcome] = [:]
  package var pendingManual: [String] = []
  package var nothingToDo = false
  /// The chain of actions that set the run's wall time (nil when no action ran).
  package var criticalPath: CriticalPath?
  /// Done actions whose command today's configuration would make differently (they were not run
  /// again: the run says so rather than "nothing to do").
  package var configurationDrift: [ConfigurationDrift] = []
  /// `run --refresh`: what it ran again, and what it found.
  package var refresh: RefreshPlan?

  /// How many actions ended how (`12 created, 3 read`), outcomes in alphabetical order; only
  /// those of `step` when given.
  package func tally(step: String? = nil) -> String {
    var counts: [ActionOutcome: Int] = [:]
    for (key, outcome) in outcomes where step.map({ key.hasPrefix("\($0)/") }) ?? true {
      counts[outcome, default: 0] += 1
    }
    return counts.sorted { $0.key.rawValue < $1.key.rawValue }
      .map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
  }

  /// One line per step that did something, in the order given (`network: 17 created, 1 read`):
  /// when steps ran beside each other their lines interleaved, and this sorts them out. Empty
  /// when only one step did something.
  package func stepTallies(order: [String]) -> [String] {
    let active = order.filter { step in outcomes.keys.contains { $0.hasPrefix("\(step)/") } }
    guard active.count > 1 else { return [] }
    let width = active.map(\.count).max() ?? 0
    return active.map {
      ($0 + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0) + " " + tally(step: $0)
    }
  }
}
