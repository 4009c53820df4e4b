using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

// Durable exchanges, queues and bindings (IDefinitionStore): one document each, written by the
// writer thread in the order the router submits them and flushed like an append.
public sealed partial class LiteDbMessageStore : IDefinitionStore
{
    internal const string DefinitionsCollection = "definitions";

    public StoredDefinitions Definitions { get; private set; } = StoredDefinitions.None;

    public void SaveExchange(ExchangeDefinition exchange)
    {
        ArgumentNullException.ThrowIfNull(exchange);
        Post(new DefinitionOperation(ExchangeId(exchange.Name), new BsonDocument
        {
            ["n"] = exchange.Name,
            ["t"] = (int)exchange.Type,
            ["a"] = exchange.AutoDelete,
        }));
    }

    public void DeleteExchange(string name) => Post(new DefinitionOperation(ExchangeId(name), null));

    public void SaveQueue(QueueDefinition queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        var document = new BsonDocument { ["n"] = queue.Name, ["a"] = queue.AutoDelete };
        if (queue.Arguments is { Count: > 0 } arguments)
        {
            document["x"] = MessageDocument.HeadersToBson(arguments);
        }

        Post(new DefinitionOperation(QueueId(queue.Name), document));
    }

    public void DeleteQueue(string name) => Post(new DefinitionOperation(QueueId(name), null));

    public void SaveBinding(BindingDefinition binding)
    {
        ArgumentNullException.ThrowIfNull(binding);
        var document = new BsonDocument { ["e"] = binding.Exchange, ["q"] = binding.Queue, ["k"] = binding.Key };
        if (binding.Arguments is { Count: > 0 } arguments)
        {
            document["x"] = MessageDocument.HeadersToBson(arguments);
        }

        Post(new DefinitionOperation(BindingId(binding), document));
    }

    public void DeleteBinding(BindingDefinition binding)
    {
        ArgumentNullException.ThrowIfNull(binding);
        Post(new DefinitionOperation(BindingId(binding), null));
    }

    private static string ExchangeId(string name) => "x\0" + name;

    private static string QueueId(string name) => "q\0" + name;

    // Bindings differ by their arguments too (headers exchanges).
    private static string BindingId(BindingDefinition binding) =>
        $"b\0{binding.Exchange}\0{binding.Queue}\0{binding.Key}\0" +
        (binding.Arguments is { Count: > 0 } arguments ? Convert.ToBase64String(BsonSerializer.Serialize(MessageDocument.HeadersToBson(arguments))) : string.Empty);

    private static StoredDefinitions LoadDefinitions(LiteDatabase database)
    {
        List<ExchangeDefinition> exchanges = [];
        List<QueueDefinition> queues = [];
        List<BindingDefinition> bindings = [];
        foreach (var document in database.GetCollection(DefinitionsCollection).FindAll())
        {
            var arguments = document.TryGetValue("x", out var x) && x.IsDocument ? MessageDocument.HeadersFromBson(x.AsDocument) : null;
            switch (document["_id"].AsString[0])
            {
                case 'x':
                    exchanges.Add(new ExchangeDefinition(document["n"].AsString, (ExchangeType)document["t"].AsInt32, document["a"].AsBoolean));
                    break;
                case 'q':
                    queues.Add(new QueueDefinition(document["n"].AsString, document["a"].AsBoolean, arguments));
                    break;
                case 'b':
                    bindings.Add(new BindingDefinition(document["e"].AsString, document["q"].AsString, document["k"].AsString, arguments));
                    break;
            }
        }

        return new StoredDefinitions(exchanges, queues, bindings);
    }

    // Upserts the definition, or deletes it when there is none.
    private sealed class DefinitionOperation(string id, BsonDocument? document) : StoreOperation<bool>
    {
        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var definitions = store._database.GetCollection(DefinitionsCollection);
            if (document is null)
            {
                SetResult(definitions.Delete(id));
            }
            else
            {
                document["_id"] = id;
                SetResult(definitions.Upsert(document));
            }

            return StoreEffect.MustFlush;
        }
    }
}
