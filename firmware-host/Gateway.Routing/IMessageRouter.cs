namespace Gateway.Routing;

/// <summary>The router every protocol adapter, uplink and endpoint talks to.</summary>
public interface IMessageRouter
{
    /// <summary>
    /// Routes a message. Completes once every matching queue holds it; waits while a matched
    /// queue with a flow limit is full (back-pressure to the publisher).
    /// </summary>
    ValueTask<RouteResult> PublishAsync(GatewayMessage message, CancellationToken cancellationToken);

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
