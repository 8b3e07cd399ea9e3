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

/// Error codes EC2 answers for an id it has not propagated yet: right after a create, a call that
/// names the new id can fail this way for a few seconds. "Eventual consistency in the Amazon EC2
/// API" (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html) says to retry
/// with exponential back-off, from a couple of seconds up to a few minutes. Retried only for ids
/// the same run created or found: an id from an old checkpoint that is not found is really gone.
package let notVisibleYetErrorCodes: Set<String> = [
  "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
  "InvalidAllocationID.NotFound", "InvalidInternetGatewayID.NotFound",
  "InvalidRouteTableID.NotFound", "InvalidNatGatewayID.NotFound", "NatGatewayNotFound",
  "InvalidNetworkInterfaceID.NotFound", "InvalidAssociationID.NotFound",
]

/// The aws CLI's error output as a reason for people: connection failures are named as such, and
/// options this aws CLI does not know with the releases that know them.
package func explainAWSFailure(_ stderr: String) -> String {
  let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
  if text.isEmpty { return "no error output" }
  if let unknown = explainUnknownOptions(text) { return unknown }
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

/// `Unknown options: --manage-master-user-password` (after the usage text; exit 255 on v1, 252 on
/// v2): an aws CLI older than an option. The line alone, with the releases that know the option
/// when it is one of ``AWSCLI/stepRequirements`` or ``AWSCLI/s3StateRequirements``.
func explainUnknownOptions(_ text: String) -> String? {
  guard
    let line = text.split(separator: "\n").last(where: { $0.hasPrefix("Unknown options: ") })
  else { return nil }
  let options = line.dropFirst("Unknown options: ".count).split(separator: ",").map {
    $0.trimmingCharacters(in: .whitespaces)
  }.filter { $0.hasPrefix("--") }
  var probe = AWSCLIProbe()
  for option in options {
    if let (requirement, parameter) = AWSCLI.requirement(
      withOption: option, in: AWSCLI.stepRequirements + AWSCLI.s3StateRequirements)
    {
      probe.missing.append((requirement, [parameter]))
    }
  }
  guard !probe.missing.isEmpty else {
    return "\(line): this aws CLI does not know them (see 'runbook doctor')"
  }
  return
    "\(line): this aws CLI is older than \(probe.missingText): install \(probe.upgradeText(version: nil)) (see 'runbook doctor')"
}
