namespace Gateway.Routing;

/// <summary>Why a queue refused a message.</summary>
public enum PublishRefusal
{
    /// <summary>No queue refused it.</summary>
    None,

    /// <summary>A queue over its length limit with <c>x-overflow: reject-publish</c> (or <c>reject-publish-dlx</c>).</summary>
    QueueFull,

    /// <summary>A durable queue's store is under its free-disk reserve.</summary>
    LowDisk,

    /// <summary>A durable queue's store has more writes waiting than it takes.</summary>
    StoreBusy,
}

/// <summary>
/// What routing a message promises its publisher (ARCHITECTURE.md, "What an acknowledgement
/// means"): whether it was routed, refused (and why) or matched nothing, when it is on disk in
/// every durable queue that took it, and whether the publisher should pause. MQTT PUBACK, STOMP
/// RECEIPT and AMQP <c>basic.ack</c> are all answered from it: acknowledge once
/// <see cref="Committed"/> has completed successfully; a fault there means the store failed,
/// and the publisher must be told so, not acknowledged.
/// </summary>
public readonly struct PublishTicket
{
    private readonly MessageQueue? _flowBlocked;

    internal PublishTicket(RouteResult result, PublishRefusal refusal, Task? committed, MessageQueue? flowBlocked)
    {
        Result = result;
        Refusal = refusal;
        Committed = committed;
        _flowBlocked = flowBlocked;
    }

    public RouteResult Result { get; }

    public RouteStatus Status => Result.Status;

    /// <summary>Why it was refused, when <see cref="Status"/> is <see cref="RouteStatus.Rejected"/>.</summary>
    public PublishRefusal Refusal { get; }

    /// <summary>
    /// Completes once every durable queue that took the message has it on disk; faults if the
    /// store failed to write it (then no queue keeps it). Null when no durable queue took it.
    /// </summary>
    public Task? Committed { get; }

    /// <summary>A queue that took it is over its flow limit: the publisher should pause (<see cref="WaitForFlowAsync"/>).</summary>
    public bool FlowBlocked => _flowBlocked is not null;

    /// <summary>Waits until every queue over its flow limit has drained to half of it.</summary>
    public Task WaitForFlowAsync(CancellationToken cancellationToken) =>
        _flowBlocked?.WaitForFlowAsync(cancellationToken) ?? Task.CompletedTask;
}
