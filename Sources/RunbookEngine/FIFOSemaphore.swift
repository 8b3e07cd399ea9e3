import Foundation

/// A counting semaphore whose waiters go first come, first served.
///
/// It bounds the actions running at once across a run's steps (`--jobs`: ``ActionSlots``), and
/// lets the checkpoint's changes through one at a time (``CheckpointKeeper``).
actor FIFOSemaphore {
  private var free: Int
  private var waiting: [CheckedContinuation<Void, Never>] = []

  init(_ limit: Int) { free = max(1, limit) }

  func acquire() async {
    if free > 0 {
      free -= 1
      return
    }
    await withCheckedContinuation { waiting.append($0) }
  }

  func release() {
    if waiting.isEmpty {
      free += 1
    } else {
      waiting.removeFirst().resume()
    }
  }

}

/// At most `limit` actions running at once, across the steps of a run (`--jobs`).
typealias ActionSlots = FIFOSemaphore
