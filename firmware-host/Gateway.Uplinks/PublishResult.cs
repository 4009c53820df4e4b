namespace Gateway.Uplinks;

/// <summary>
/// Why the cloud did not confirm a publish, in protocol-neutral terms (as iotedge's
/// <c>FailureKind</c>). <see cref="Transient"/> is about the link, not the message: the link is
/// re-established and the message sent again. Every other kind is the cloud refusing this
/// message: it moves to the uplink's dead-letter queue with <see cref="PublishResult.Reason"/>.
/// </summary>
internal enum FailureKind : byte
{
    None,

    /// <summary>The broker could not take it now (AMQP <c>basic.nack</c>): sent again after a reconnect.</summary>
    Transient,

    /// <summary>Not allowed for these credentials (MQTT 5 0x87).</summary>
    Unauthorized,

    /// <summary>Over a quota or rate (MQTT 5 0x97).</summary>
    Throttled,

    /// <summary>No broker would take it: a bad topic or payload, an unroutable mandatory publish (AMQP <c>basic.return</c>).</summary>
    Invalid,

    /// <summary>Refused for a reason the protocol does not classify (MQTT 5 0x80, 0x83).</summary>
    Refused,
}

/// <summary>
/// What the cloud answered for one publish: confirmed (the default value, nothing allocated), or
/// a failure with its kind and a reason for the log and the <c>x-uplink-reason</c> header.
/// </summary>
internal readonly record struct PublishResult(FailureKind Failure, string? Reason)
{
    public static PublishResult Confirmed => default;

    public bool IsConfirmed => Failure == FailureKind.None;

    /// <summary>The message is refused: dead-lettered, never sent again.</summary>
    public bool IsRejected => Failure is not (FailureKind.None or FailureKind.Transient);

    public static PublishResult Rejected(FailureKind failure, string reason) => new(failure, reason);

    public static PublishResult Failed(string reason) => new(FailureKind.Transient, reason);
}
