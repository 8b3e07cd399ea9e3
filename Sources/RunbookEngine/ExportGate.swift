import Foundation
import Synchronization

/// Where an action of a run whose steps run side by side waits for the exports other steps make
/// (and for the steps it names, ``Action/afterSteps``).
///
/// A run schedules actions, not steps: the DB subnet group starts as soon as the private subnets
/// and the database's security group exist, not when the whole network step (its NAT gateway wait
/// included) has finished. Each export another step of the run is still to make is pending here
/// until the action producing it has finished, or its step has ended without it (failed, or the
/// action had nothing to record): then the waiting action goes on, and fails or stops as it would
/// have after that step.
final class ExportGate: Sendable {
  private struct State {
    /// The exports still to come, with the index of the step that makes each.
    var pending: [String: Int]
    /// Bumped on every change, so that a waiter cannot miss one between looking and sleeping.
    var version = 0
    var waiters: [CheckedContinuation<Void, Never>] = []
  }

  private let state: Mutex<State>

  /// `pending`: each export some step of the run will make, with that step's index.
  init(pending: [String: Int]) {
    state = Mutex(State(pending: pending))
  }

  /// The name under which step `id` is pending until it ends (no export has a space in its name).
  static func step(_ id: String) -> String { "step " + id }

  /// What of `action` another step than `step` has still to make: the exports it uses, and the
  /// steps it names in ``Action/afterSteps``.
  func awaited(_ action: Action, by step: Int) -> Set<String> {
    awaited(action.exportReferences + action.afterSteps.map(Self.step), by: step)
  }

  /// The names of `needed` that another step than `step` has still to make.
  func awaited(_ needed: [String], by step: Int) -> Set<String> {
    state.withLock { state in
      Set(needed.filter { state.pending[$0].map { $0 != step } ?? false })
    }
  }

  /// The action producing `export` has finished: its value is in the checkpoint.
  func produced(_ export: String) {
    change { $0.pending[export] = nil }
  }

  /// Step `index` has ended, successfully or not: nothing more will come from it.
  func stepEnded(_ index: Int) {
    change { state in state.pending = state.pending.filter { $0.value != index } }
  }

  /// Returns once none of `exports` is pending any more.
  func wait(for exports: Set<String>) async {
    while true {
      let seen: Int? = state.withLock { state in
        exports.isDisjoint(with: state.pending.keys) ? nil : state.version
      }
      guard let seen else { return }
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let now = state.withLock { state -> Bool in
          if state.version != seen { return true }
          state.waiters.append(continuation)
          return false
        }
        if now { continuation.resume() }
      }
    }
  }

  private func change(_ body: (inout State) -> Void) {
    let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
      body(&state)
      state.version += 1
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume() }
  }
}
