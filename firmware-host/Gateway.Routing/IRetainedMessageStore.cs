namespace Gateway.Routing;

/// <summary>
/// Durable last-value-per-topic storage for retained messages (MQTT retain), keyed by the
/// protocol's topic. Implemented by the message store.
/// </summary>
public interface IRetainedMessageStore
{
    /// <summary>Stores (or, with null, deletes) the retained message for a topic; completes once it is on disk.</summary>
    ValueTask SetRetainedAsync(string topic, GatewayMessage? message, CancellationToken cancellationToken);

    ValueTask<IReadOnlyList<KeyValuePair<string, GatewayMessage>>> LoadRetainedAsync(CancellationToken cancellationToken);
}
