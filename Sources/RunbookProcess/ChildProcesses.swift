import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// One launched child: its pid, its termination and the readers of its output.
final class RunningChild: Sendable {
  let id: UInt64
  let pid: pid_t
  /// Kept so the `Process` outlives its termination handler.
  let process: Process
  let registry: ChildRegistry
  let termination: OneShot<Termination>
  let standardOutput: OneShot<Data>?
  let standardError: OneShot<Data>

  init(
    id: UInt64, pid: pid_t, process: Process, registry: ChildRegistry,
    termination: OneShot<Termination>, standardOutput: OneShot<Data>?,
    standardError: OneShot<Data>
  ) {
    self.id = id
    self.pid = pid
    self.process = process
    self.registry = registry
    self.termination = termination
    self.standardOutput = standardOutput
    self.standardError = standardError
  }

  /// Waits for the exit and for both pipes to reach EOF (exit can come first), then forgets the
  /// child.
  func finish() async -> ProcessOutput {
    let termination = await self.termination.value
    let output = await standardOutput?.value ?? Data()
    let error = await standardError.value
    registry.remove(id)
    return ProcessOutput(termination: termination, standardOutput: output, standardError: error)
  }
}

// MARK: - Registry of live children

/// The children of one runner, for ``ProcessRunner/interruptChildren(grace:)``.
///
/// An entry lives from just before `Process.run()` until the run has read both pipes to EOF, so a
/// group whose leader exited but whose descendants still hold the pipes can still be killed.
final class ChildRegistry: Sendable {
  private struct Entry {
    var pid: pid_t?
    var exited = false
    var interruptRequested = false
  }

  private struct State {
    var nextID: UInt64 = 1
    var entries: [UInt64: Entry] = [:]
  }

  private let state = Mutex(State())

  var liveCount: Int {
    state.withLock { state in
      state.entries.values.filter { $0.pid != nil && !$0.exited }.count
    }
  }

  func beginLaunch() -> UInt64 {
    state.withLock { state in
      let id = state.nextID
      state.nextID += 1
      state.entries[id] = Entry()
      return id
    }
  }

  /// Records the pid; returns whether an interrupt was requested during the launch.
  func launched(_ id: UInt64, pid: pid_t) -> Bool {
    state.withLock { state in
      state.entries[id]?.pid = pid
      return state.entries[id]?.interruptRequested ?? false
    }
  }

  func markExited(_ id: UInt64) {
    state.withLock { state in state.entries[id]?.exited = true }
  }

  func remove(_ id: UInt64) {
    _ = state.withLock { state in state.entries.removeValue(forKey: id) }
  }

  /// Marks every entry interrupted; returns the started children to signal now and every id
  /// involved (children still being launched are signalled as soon as their pid is known).
  func interruptAll() -> (ids: [UInt64], children: [(pid: pid_t, exited: Bool)]) {
    state.withLock { state in
      var ids: [UInt64] = []
      var children: [(pid: pid_t, exited: Bool)] = []
      for (id, entry) in state.entries {
        ids.append(id)
        if let pid = entry.pid {
          children.append((pid, entry.exited))
        } else {
          state.entries[id]?.interruptRequested = true
        }
      }
      return (ids, children)
    }
  }

  /// The started children among `ids` whose runs have not finished.
  func stillRegistered(_ ids: [UInt64]) -> [(pid: pid_t, exited: Bool)] {
    state.withLock { state in
      ids.compactMap { id in
        guard let entry = state.entries[id], let pid = entry.pid else { return nil }
        return (pid, entry.exited)
      }
    }
  }
}

// MARK: - Threads, pipes and signals
