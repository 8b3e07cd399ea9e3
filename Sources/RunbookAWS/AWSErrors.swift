import Foundation
import RunbookProcess

/// Reads the error code from the aws CLI's standard error (`An error occurred (Code) when ...`).
package func awsErrorCode(in stderr: String) -> String? {
  guard let open = stderr.range(of: "An error occurred ("),
    let close = stderr[open.upperBound...].firstIndex(of: ")")
  else { return nil }
  return String(stderr[open.upperBound..<close])
}

/// Error codes that mean "slow down"; retried with jittered exponential backoff.
package let throttlingErrorCodes: Set<String> = [
  "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
  "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
  "SlowDown", "PriorRequestNotComplete", "ProvisionedThroughputExceededException",
]

/// The aws CLI's error output as a reason for people: connection failures are named as such.
package func explainAWSFailure(_ stderr: String) -> String {
  let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
  if text.isEmpty { return "no error output" }
  if text.contains("Could not connect to the endpoint URL")
    || text.contains("Connect timeout on endpoint URL")
  {
    return "AWS could not be reached (check the network, --endpoint-url and --region): " + text
  }
  return text
}

/// The AWS request id in a command's output, when the CLI printed one (`"RequestId": "…"` in some
/// responses, `Request ID: …` in some error messages; aws CLI v1 prints none for most calls).
package func awsRequestID(in text: String) -> String? {
  let pattern = #"(?i)"?request[ _-]?id"?\s*[:=]\s*"?([A-Za-z0-9][A-Za-z0-9-]{15,})"#
  return extractedValues(pattern, in: text).first
}
