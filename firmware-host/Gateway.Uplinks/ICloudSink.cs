using Gateway.Routing;

namespace Gateway.Uplinks;

/// <summary>
/// The protocol half of an uplink (ARCHITECTURE.md, seams): connects to a cloud broker, publishes
/// with confirmation, and brings downlink messages home. Everything else (the durable queue, the
/// in-flight window, failover, back-off, stall detection, link state, dead-lettering, rate limit,
/// metrics) is <see cref="CloudForwarder"/>'s, for every protocol alike.
/// </summary>
/// <remarks>
/// An AMQP 0-9-1 sink (RabbitMQ.Client with publisher confirms, a channel per link) maps onto it
/// as follows: delivery tag n is the n-th publish sent on the channel, so sequence n − 1 while
/// the sink sends every publish it is given (one it answers itself without sending shifts the
/// tags after it); <c>basic.ack</c> is <see cref="IPublishConfirmations.TryComplete"/>, or
/// <see cref="IPublishConfirmations.CompleteThrough"/> with <c>multiple</c>; <c>basic.nack</c>
/// is <see cref="FailureKind.Transient"/>; a <c>basic.return</c> of a mandatory publish (it
/// comes before that publish's ack; the sink tells which publish it was by a property it set) is
/// answered as <see cref="FailureKind.Invalid"/>; while the broker has the connection blocked
/// (<c>connection.blocked</c>) the publish task does not complete, which holds sending back as a
/// full socket does, and the stall bound applies.
/// </remarks>
internal interface ICloudSink
{
    /// <summary>Where the cloud puts a message (its topic, or exchange and routing key): for logs and the dead-letter headers.</summary>
    string RemoteAddress(GatewayMessage message);

    /// <summary>
    /// Connects to one endpoint. Failures are results, not exceptions; an
    /// <see cref="OperationCanceledException"/> leaves only when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    Task<ConnectResult> ConnectAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken);

    /// <summary>Whether the endpoint looks up again (while on a secondary, before returning to the primary); cheap, no session.</summary>
    Task<bool> IsReachableAsync(UplinkEndpoint endpoint, CancellationToken cancellationToken);
}

/// <summary>One connection to a cloud broker, from a successful connect until it is disposed.</summary>
internal interface ICloudLink : IAsyncDisposable
{
    /// <summary>The most publishes the broker lets wait for confirmation (MQTT 5 Receive Maximum); <see cref="int.MaxValue"/> when it sets none.</summary>
    int MaxUnconfirmed { get; }

    /// <summary>What <see cref="MaxUnconfirmed"/> is, for the "connected" log line.</summary>
    string MaxUnconfirmedSource { get; }

    /// <summary>Completes, with the reason, when the link is lost (closed by the peer, liveness check failed).</summary>
    Task<string> Closed { get; }

    /// <summary>
    /// Readies the link both ways (downlink subscriptions, liveness checks). False when the link
    /// dropped or timed out meanwhile: the forwarder connects again.
    /// </summary>
    Task<bool> StartAsync(CancellationToken cancellationToken);

    /// <summary>Where the answers to publishes go from now on; null when the session's window closes.</summary>
    void SetConfirmations(IPublishConfirmations? confirmations);

    /// <summary>
    /// Sends one publish. Completes once it is written (usually synchronously); its answer goes to
    /// the <see cref="IPublishConfirmations"/>, reported by the link itself for a publish the
    /// cloud does not confirm (done once written) or that it cannot send at all (invalid).
    /// </summary>
    Task PublishAsync(long sequence, GatewayMessage message, CancellationToken cancellationToken);

    /// <summary>Whether a failed publish just means the link went (not worth an error line).</summary>
    bool IsLinkLoss(Exception exception);
}
