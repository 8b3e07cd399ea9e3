import Foundation
import RunbookAWS
import RunbookProcess
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The S3 lock this process holds; renews its lease every third of the lease time.
final class S3Lock: HeldLock, Sendable {
  let store: S3StateStore
  let previous: LockRecord? = nil
  private let state: Mutex<(eTag: String, released: Bool)>
  private let renewal = Mutex<Task<Void, Never>?>(nil)

  init(store: S3StateStore, record: LockRecord, eTag: String) {
    self.store = store
    state = Mutex((eTag, false))
    let interval = store.leaseSeconds / 3
    renewal.withLock {
      $0 = Task { [weak self] in
        while !Task.isCancelled {
          try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
          guard !Task.isCancelled, let self else { return }
          guard await self.renew(record) else { return }
        }
      }
    }
  }

  /// Writes a fresh lease over the lock, only if the lock is still this run's. False when it is not.
  private func renew(_ record: LockRecord) async -> Bool {
    let (eTag, released) = state.withLock { ($0.eTag, $0.released) }
    guard !released else { return false }
    let fresh = store.newLockRecord(command: record.command, startedAt: record.startedAt)
    do {
      guard
        let next = try await store.write(
          "lock", S3StateStore.encodeLock(fresh), condition: ["--if-match", eTag])
      else {
        store.lockLost.withLock {
          $0 =
            "the lock was released with 'runbook unlock' or taken by another run while this run held it"
        }
        return false
      }
      state.withLock { $0.eTag = next }
    } catch {
      // A failed renewal is tried again at the next interval; the lease is three intervals long.
    }
    return true
  }

  func release() async {
    let task = renewal.withLock { task -> Task<Void, Never>? in
      defer { task = nil }
      return task
    }
    task?.cancel()
    await task?.value
    let eTag = state.withLock { current -> String? in
      guard !current.released else { return nil }
      current.released = true
      return current.eTag
    }
    guard let eTag, store.lockLost.withLock({ $0 }) == nil else { return }
    _ = try? await store.delete("lock", eTag: eTag)
  }
}
