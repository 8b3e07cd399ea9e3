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

/// Delivers signals (SIGINT, SIGTERM…) to a handler through Dispatch signal sources.
///
/// Create it at startup, before any child is spawned, and keep a reference: deinit cancels it.
///
/// On Linux, libdispatch installs its own handler for each watched signal. The signal is then
/// neither fatal to us nor ignored, and `exec` resets it to the default action in every child, so
/// `aws` and `docker` still die on the SIGINT that ``ProcessRunner/interruptChildren(grace:)``
/// sends. Setting a signal to `SIG_IGN` instead would be inherited by every child (which would
/// then ignore the interrupt), so nothing here, or anywhere else, should ever do that.
///
/// `init` returns once every source is registered, so a signal raised right after it is not lost
/// (nor does it kill the process with the default action).
///
/// After ``cancel()`` the signal stays caught by libdispatch's handler (libdispatch never
/// uninstalls it), so it is then effectively ignored: to exit "killed by SIGINT", set the
/// disposition back to `SIG_DFL` and raise the signal yourself.
public final class SignalWatcher: Sendable {
  private let sources: Mutex<[any DispatchSourceSignal]>

  /// Starts watching `signals`.
  ///
  /// - Parameters:
  ///   - signals: Signal numbers, such as `SIGINT` and `SIGTERM`.
  ///   - handler: Called with the signal number, on a private serial queue, once for each burst
  ///     of deliveries (signals that arrive together are coalesced).
  public init(signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
    let queue = DispatchQueue(label: "runbook.signal-watcher")
    let registered = DispatchGroup()
    var sources: [any DispatchSourceSignal] = []
    for signal in signals {
      let source = DispatchSource.makeSignalSource(signal: signal, queue: queue)
      source.setEventHandler { handler(signal) }
      registered.enter()
      source.setRegistrationHandler { registered.leave() }
      source.resume()
      sources.append(source)
    }
    _ = registered.wait(timeout: .now() + 5)
    self.sources = Mutex(sources)
  }

  /// Stops delivering signals to the handler.
  public func cancel() {
    sources.withLock { sources in
      for source in sources where !source.isCancelled {
        source.cancel()
      }
    }
  }

  deinit {
    cancel()
  }
}
