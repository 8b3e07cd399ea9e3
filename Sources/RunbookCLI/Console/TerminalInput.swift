import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The operator's answers: standard input read a line at a time, in a way an interrupt can end.
///
/// `Swift.readLine()` waits in `read(2)`, and nothing ever ends that wait: Ctrl-C reaches the tool
/// through a signal source on a libdispatch queue (``SignalWatcher``), not as a signal that makes
/// the read fail, so at a prompt the terminal only echoed `^C`, threw the line away and the read
/// went on waiting (an empty line then answered "please answer y, n, a or q"). This reader waits
/// with `poll(2)` on the input and on a pipe of its own, to which ``interrupt()`` writes: a
/// waiting ``readLine()`` returns nil at once, and so does every later one.
///
/// It reads the descriptor itself (no stdio buffer): nothing else may read the same input.
public final class TerminalInput: Sendable {
  private let descriptor: Int32
  /// Written by ``interrupt()``, polled beside the input; both ends close-on-exec.
  private let wake: (read: Int32, write: Int32)
  private let state = Mutex(State())

  private struct State {
    /// Bytes read past the last line returned.
    var pending: [UInt8] = []
    var interrupted = false
  }

  /// - Parameter descriptor: The input, usually `STDIN_FILENO` (a terminal, a pipe or a file).
  public init(descriptor: Int32 = STDIN_FILENO) {
    self.descriptor = descriptor
    // Made at startup, before any child is started: no child can inherit it before
    // close-on-exec is set.
    var ends: [Int32] = [-1, -1]
    if pipe(&ends) == 0 {
      for end in ends {
        _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
      }
    } else {
      ends = [-1, -1]
    }
    wake = (ends[0], ends[1])
  }

  deinit {
    if wake.read >= 0 { close(wake.read) }
    if wake.write >= 0 { close(wake.write) }
  }

  /// Whether ``interrupt()`` was called.
  public var isInterrupted: Bool { state.withLock { $0.interrupted } }

  /// Ends the wait of ``readLine()`` now and of every later call: they return nil.
  ///
  /// Safe to call from any thread (the signal watcher's queue), any number of times.
  public func interrupt() {
    let first = state.withLock { state in
      defer { state.interrupted = true }
      return !state.interrupted
    }
    guard first, wake.write >= 0 else { return }
    var byte: UInt8 = 1
    _ = write(wake.write, &byte, 1)
  }

  /// The next line, without its line ending; nil at the end of the input, when the input cannot
  /// be read (a terminal that was closed), or once interrupted.
  ///
  /// At the end of the input, text without a line ending is returned as the last line.
  public func readLine() -> String? {
    while true {
      let taken: String?? = state.withLock { state in
        if state.interrupted { return .some(nil) }
        guard let newline = state.pending.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = Array(state.pending[..<newline])
        state.pending.removeFirst(newline + 1)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return .some(String(decoding: line, as: UTF8.self))
      }
      if let taken { return taken }
      var watched = [
        pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
        pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
      ]
      let ready = poll(&watched, nfds_t(wake.read >= 0 ? 2 : 1), -1)
      if ready < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        return nil
      }
      if watched[1].revents != 0 { continue }  // interrupted: the next turn returns nil
      guard watched[0].revents != 0 else { continue }
      var chunk = [UInt8](repeating: 0, count: 4096)
      let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        return nil  // EIO: the terminal was closed
      }
      if count == 0 {
        // The end of the input (Ctrl-D at the start of a line on a terminal).
        return state.withLock { state in
          if state.interrupted || state.pending.isEmpty { return nil }
          defer { state.pending.removeAll() }
          return String(decoding: state.pending, as: UTF8.self)
        }
      }
      state.withLock { $0.pending += chunk[..<count] }
    }
  }
}
