namespace Gateway.Routing;

/// <summary>
/// Durable last-value-per-key records: one message per key, kept across restarts. The store
/// implements it without knowing what the keys mean; the MQTT endpoint keeps its retained
/// messages in it, keyed by topic (any length the protocol allows), and owns their rules.
/// </summary>
public interface IRetainedMessageStore
{
    /// <summary>Stores (or, with null, deletes) the retained message for a topic; completes once it is on disk.</summary>
    ValueTask SetRetainedAsync(string topic, GatewayMessage? message, CancellationToken cancellationToken);

    /// <summary>Every retained message with its topic, read a batch at a time (memory for one batch, however many there are).</summary>
    IAsyncEnumerable<KeyValuePair<string, GatewayMessage>> ReadRetainedAsync(CancellationToken cancellationToken);

    /// <summary>Deletes every retained message; completes once that is on disk.</summary>
    ValueTask ClearRetainedAsync(CancellationToken cancellationToken);
}
