namespace Gateway.Uplinks;

/// <summary>
/// How a connect attempt ended: a <see cref="Link"/>; or a failure before the broker answered
/// (the next endpoint is tried); or the broker's refusal (<see cref="Answered"/>: the same
/// endpoint again after the back-off). <see cref="FailureKind.Unauthorized"/> means refused
/// credentials or client id: the link is <c>Failed</c> until a connect succeeds.
/// </summary>
internal readonly record struct ConnectResult(ICloudLink? Link, FailureKind Failure, string Reason, bool Answered)
{
    public static ConnectResult Connected(ICloudLink link) => new(link, FailureKind.None, string.Empty, Answered: true);

    public static ConnectResult Unreachable(FailureKind failure, string reason) => new(null, failure, reason, Answered: false);

    public static ConnectResult Refused(FailureKind failure, string reason) => new(null, failure, reason, Answered: true);
}
