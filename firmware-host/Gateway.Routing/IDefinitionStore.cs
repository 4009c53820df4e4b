namespace Gateway.Routing;

/// <summary>
/// Where the router keeps durable definitions (ARCHITECTURE.md, Gateway.Storage): durable
/// exchanges, durable queues and the bindings between them survive a restart, as in RabbitMQ.
/// Queues declared from configuration at every start (<see cref="QueueOptions.FromConfiguration"/>)
/// and their bindings are not kept: the configuration stays the one source of them. Writes are
/// submitted in order and never make the caller wait.
/// </summary>
public interface IDefinitionStore
{
    /// <summary>What was stored when the store was opened.</summary>
    StoredDefinitions Definitions { get; }

    void SaveExchange(ExchangeDefinition exchange);

    void DeleteExchange(string name);

    void SaveQueue(QueueDefinition queue);

    void DeleteQueue(string name);

    void SaveBinding(BindingDefinition binding);

    void DeleteBinding(BindingDefinition binding);
}

public sealed record class ExchangeDefinition(string Name, ExchangeType Type, bool AutoDelete);

public sealed record class QueueDefinition(string Name, bool AutoDelete, IReadOnlyDictionary<string, object?>? Arguments);

public sealed record class BindingDefinition(string Exchange, string Queue, string Key, IReadOnlyDictionary<string, object?>? Arguments);

public sealed record class StoredDefinitions(
    IReadOnlyList<ExchangeDefinition> Exchanges,
    IReadOnlyList<QueueDefinition> Queues,
    IReadOnlyList<BindingDefinition> Bindings)
{
    public static readonly StoredDefinitions None = new([], [], []);
}
