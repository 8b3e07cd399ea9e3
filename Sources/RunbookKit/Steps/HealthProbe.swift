import Foundation

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// One HTTP GET of a health URL with Foundation's URLSession (no curl), judged the way Spring
/// Boot's actuator answers: HTTP 200 and `"status":"UP"` in the body.
struct HealthProbe: Sendable {
  /// What one GET produced.
  struct Answer: Sendable {
    /// The HTTP status, or nil when no answer came (refused, timed out, not resolvable).
    var status: Int?
    var milliseconds: Int
    /// The body's first 200 characters on one line, or the connection error.
    var excerpt: String

    var isUp: Bool {
      status == 200
        && excerpt.range(of: #""status"\s*:\s*"UP""#, options: .regularExpression) != nil
    }

    var line: String {
      let code = status.map { "HTTP \($0)" } ?? "no answer"
      return "\(code) in \(milliseconds) ms: \(excerpt)"
    }
  }

  var url: URL

  /// Whether the host is this machine (127.0.0.0/8, localhost, ::1).
  static func isLoopback(_ host: String?) -> Bool {
    guard let host = host?.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    else {
      return false
    }
    return host == "localhost" || host == "::1" || host.hasPrefix("127.")
  }

  /// What a connection error means, in words.
  static func explain(_ error: Error) -> String {
    switch (error as? URLError)?.code {
    case .timedOut?: "timed out"
    case .cannotConnectToHost?: "connection refused"
    case .cannotFindHost?, .dnsLookupFailed?: "the host name does not resolve"
    case .networkConnectionLost?: "the connection was closed before an answer"
    case .notConnectedToInternet?: "no network"
    default: error.localizedDescription
    }
  }

  /// GETs the URL once, waiting at most `timeout` seconds.
  func get(timeout: Double) async -> Answer {
    var request = URLRequest(
      url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
    request.httpMethod = "GET"
    request.setValue("runbook-verify", forHTTPHeaderField: "User-Agent")
    let configuration = URLSessionConfiguration.ephemeral
    configuration.connectionProxyDictionary = [:]
    configuration.timeoutIntervalForRequest = timeout
    configuration.timeoutIntervalForResource = timeout
    let session = URLSession(configuration: configuration)
    defer { session.finishTasksAndInvalidate() }
    let started = Date()
    let result: (Data?, URLResponse?, Error?) = await withCheckedContinuation { continuation in
      session.dataTask(with: request) { data, response, error in
        continuation.resume(returning: (data, response, error))
      }.resume()
    }
    let milliseconds = Int(Date().timeIntervalSince(started) * 1000)
    if let error = result.2 {
      return Answer(status: nil, milliseconds: milliseconds, excerpt: Self.explain(error))
    }
    let status = (result.1 as? HTTPURLResponse)?.statusCode
    let body = String(decoding: result.0 ?? Data(), as: UTF8.self)
    let oneLine = body.split(whereSeparator: \.isNewline).joined(separator: " ")
    return Answer(status: status, milliseconds: milliseconds, excerpt: String(oneLine.prefix(200)))
  }
}
