import Foundation

/// A counting semaphore whose waiters go first come, first served, unless a waiter says it is
/// more urgent: a higher `priority` goes before every lower one, and equal ones keep their order.
///
/// It bounds the actions running at once across a run's steps (`--jobs`: ``ActionSlots``, by
/// ``WaitPriority``), and lets the checkpoint's changes through one at a time
/// (``CheckpointKeeper``).
actor FIFOSemaphore {
  private var free: Int
  private var waiting: [(priority: Double, resume: CheckedContinuation<Void, Never>)] = []

  init(_ limit: Int) { free = max(1, limit) }

  func acquire(priority: Double = 0) async {
    if free > 0 {
      free -= 1
      return
    }
    await withCheckedContinuation { continuation in
      let place = waiting.firstIndex { $0.priority < priority } ?? waiting.endIndex
      waiting.insert((priority, continuation), at: place)
    }
  }

  /// How many wait for a turn.
  var waiters: Int { waiting.count }

  func release() {
    if waiting.isEmpty {
      free += 1
    } else {
      waiting.removeFirst().resume.resume()
    }
  }

}

/// At most `limit` actions running at once, across the steps of a run (`--jobs`).
typealias ActionSlots = FIFOSemaphore
