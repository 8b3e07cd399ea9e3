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

/// Serialises `Process.run()`: Foundation creates its termination socket without close-on-exec
/// and closes inherited descriptors from a snapshot of `/proc/self/fd`, so two concurrent launches
/// can leak descriptors into each other's children.
let launchLock = Mutex(())

/// Sends `signal` to the process group led by `pid`.
///
/// Foundation starts every child in a group of its own (`POSIX_SPAWN_SETPGROUP`, checked by the
/// tests), and the group outlives its leader while descendants remain. Should there be no such
/// group, the signal goes to `pid` alone, but only while the child has not been reaped (its pid
/// could belong to someone else by then).
func signalGroup(_ pid: pid_t, _ signal: Int32, exited: Bool) {
  guard pid > 0 else { return }
  if kill(-pid, signal) != 0, errno == ESRCH, !exited {
    _ = kill(pid, signal)
  }
}

func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) {
  let thread = Thread(block: body)
  thread.name = name
  thread.start()
}

func closeDescriptor(_ fd: Int32) {
  _ = close(fd)
}

/// A close-on-exec pipe whose descriptors are all above 2 (so `dup2` onto 0, 1 or 2 in the child
/// always clears close-on-exec).
///
/// Glibc's `pipe2` is not visible from Swift, so close-on-exec is set right after `pipe`, under
/// the launch lock: no launch of ours can happen in between.
func makePipe(name: String, nonBlocking: Bool = false) throws -> (read: Int32, write: Int32) {
  let fds = launchLock.withLock { _ -> [Int32]? in
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return nil }
    for index in fds.indices {
      if fds[index] <= 2 {
        let moved = fcntl(fds[index], F_DUPFD_CLOEXEC, 3)
        close(fds[index])
        fds[index] = moved
      } else {
        _ = fcntl(fds[index], F_SETFD, FD_CLOEXEC)
      }
      if nonBlocking, fds[index] >= 0 {
        _ = fcntl(fds[index], F_SETFL, fcntl(fds[index], F_GETFL) | O_NONBLOCK)
      }
    }
    guard fds[0] >= 0, fds[1] >= 0 else {
      fds.filter { $0 >= 0 }.forEach(closeDescriptor)
      return nil
    }
    return fds
  }
  guard let fds else {
    throw ProcessLaunchError.launchFailed(name, reason: "pipe: \(String(cString: strerror(errno)))")
  }
  return (fds[0], fds[1])
}

/// A level-triggered flag that wakes the drain and feed threads of one child: once signalled it
/// stays readable, and every `poll` on it returns.
final class WakeSignal: Sendable {
  let readFD: Int32
  let writeFD: Int32

  init(name: String) throws {
    (readFD, writeFD) = try makePipe(name: name, nonBlocking: true)
  }

  func signal() {
    var byte: UInt8 = 1
    _ = write(writeFD, &byte, 1)
  }

  deinit {
    close(readFD)
    close(writeFD)
  }
}

/// Reads `fd` to EOF with blocking reads, or until `wake` is signalled (the child has exited and
/// the grace period is over), then closes it.
func drain(_ fd: Int32, wake: WakeSignal, into result: OneShot<Data>) {
  var data = Data()
  let capacity = 1 << 16
  let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 1)
  defer { buffer.deallocate() }
  var fds = [
    pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
    pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0),
  ]
  reading: while true {
    fds[0].revents = 0
    fds[1].revents = 0
    if poll(&fds, 2, -1) < 0 {
      if errno == EINTR { continue }
      break
    }
    if fds[1].revents != 0 {
      // Given up on EOF: take what is already buffered, without blocking, and stop.
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      for _ in 0..<16 {
        let count = read(fd, buffer, capacity)
        guard count > 0 else { break }
        data.append(buffer.assumingMemoryBound(to: UInt8.self), count: count)
      }
      break
    }
    if fds[0].revents != 0 {
      let count = read(fd, buffer, capacity)
      if count > 0 {
        data.append(buffer.assumingMemoryBound(to: UInt8.self), count: count)
      } else if count == 0 {
        break reading
      } else if errno != EINTR && errno != EAGAIN {
        break reading
      }
    }
  }
  close(fd)
  result.fulfill(data)
}

/// Writes `bytes` to the child's standard input, then closes it.
///
/// Runs on its own thread so a child that writes a lot before reading cannot deadlock against us.
/// SIGPIPE is blocked on this thread only (never ignored process-wide, which children would
/// inherit): a child that exits without reading gives EPIPE here, and the pending signal is
/// consumed.
func feed(_ bytes: Data, to fd: Int32, wake: WakeSignal) {
  var pipeSignal = sigset_t()
  sigemptyset(&pipeSignal)
  sigaddset(&pipeSignal, SIGPIPE)
  pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
  _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

  var brokenPipe = false
  bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
    guard let base = raw.baseAddress else { return }
    var offset = 0
    var fds = [
      pollfd(fd: fd, events: Int16(POLLOUT), revents: 0),
      pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0),
    ]
    while offset < raw.count {
      let count = write(fd, base + offset, min(raw.count - offset, 1 << 16))
      if count > 0 {
        offset += count
        continue
      }
      if count < 0 && errno == EINTR { continue }
      guard count < 0, errno == EAGAIN else {
        brokenPipe = errno == EPIPE
        return
      }
      fds[0].revents = 0
      fds[1].revents = 0
      if poll(&fds, 2, -1) < 0 && errno != EINTR { return }
      if fds[1].revents != 0 { return }
    }
  }
  close(fd)
  if brokenPipe {
    var zero = timespec(tv_sec: 0, tv_nsec: 0)
    _ = sigtimedwait(&pipeSignal, nil, &zero)
  }
}

// MARK: - One-shot values

/// A value set once by a thread and awaited by any number of tasks.
final class OneShot<Value: Sendable>: Sendable {
  private struct State {
    var value: Value?
    var waiters: [CheckedContinuation<Value, Never>] = []
  }

  private let state = Mutex(State())

  func fulfill(_ value: Value) {
    let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
      guard state.value == nil else { return [] }
      state.value = value
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume(returning: value) }
  }

  var value: Value {
    get async {
      await withCheckedContinuation { continuation in
        let ready = state.withLock { state -> Value? in
          if let value = state.value { return value }
          state.waiters.append(continuation)
          return nil
        }
        if let ready { continuation.resume(returning: ready) }
      }
    }
  }
}

extension Duration {
  var timeInterval: Double {
    let (seconds, attoseconds) = components
    return Double(seconds) + Double(attoseconds) / 1e18
  }
}
