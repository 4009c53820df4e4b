namespace Gateway.Routing;

/// <summary>The router every protocol adapter, uplink and endpoint talks to.</summary>
public interface IMessageRouter
{
    /// <summary>
    /// Routes a message. Completes once every matching queue holds it; waits while a matched
    /// queue with a flow limit is full (back-pressure to the publisher).
    /// </summary>
    ValueTask<RouteResult> PublishAsync(GatewayMessage message, CancellationToken cancellationToken);

    /// <summary>
    /// Routes a message now, in call order, without waiting: the ticket says whether it was
    /// routed or refused (and why), completes when it is on disk, and says whether the publisher
    /// should pause. A protocol keeps reading its connection while earlier publishes wait for the
    /// disk, and acknowledges them in order as their tickets complete.
    /// </summary>
    PublishTicket Publish(GatewayMessage message);

    Exchange DeclareExchange(string name, ExchangeType type, bool durable = false, bool autoDelete = false);

    Exchange GetExchange(string name);

    bool DeleteExchange(string name, bool ifUnused = false);

    MessageQueue DeclareQueue(string name, QueueOptions options);

    MessageQueue GetQueue(string name);

    bool TryGetQueue(string name, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out MessageQueue queue);

    int DeleteQueue(string name, bool ifUnused = false, bool ifEmpty = false);

    void Bind(string exchange, string queue, string bindingKey, IReadOnlyDictionary<string, object?>? arguments = null);

    bool Unbind(string exchange, string queue, string bindingKey, IReadOnlyDictionary<string, object?>? arguments = null);

    /// <summary>Deletes the exclusive queues of a connection that has gone.</summary>
    void ReleaseOwner(string owner);

    IReadOnlyCollection<Exchange> Exchanges { get; }

    IReadOnlyCollection<MessageQueue> Queues { get; }
}
