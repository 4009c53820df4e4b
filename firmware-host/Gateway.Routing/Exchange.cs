namespace Gateway.Routing;

public enum ExchangeType
{
    Direct,
    Topic,
    Fanout,
    Headers,
}

/// <summary>
/// An exchange routes a message to the queues bound to it. Topology changes run under the
/// router's topology lock; <see cref="Route"/> runs concurrently with them and never locks.
/// </summary>
public abstract class Exchange
{
    private readonly List<Binding> _bindings = [];

    protected Exchange(string name, ExchangeType type, bool durable, bool autoDelete)
    {
        Name = name;
        Type = type;
        Durable = durable;
        AutoDelete = autoDelete;
    }

    public string Name { get; }

    public ExchangeType Type { get; }

    public bool Durable { get; }

    public bool AutoDelete { get; }

    /// <summary>The default exchange and the <c>amq.*</c> exchanges.</summary>
    public bool BuiltIn { get; internal init; }

    public int BindingCount
    {
        get
        {
            lock (_bindings)
            {
                return _bindings.Count;
            }
        }
    }

    public static string TypeName(ExchangeType type) => type switch
    {
        ExchangeType.Direct => "direct",
        ExchangeType.Topic => "topic",
        ExchangeType.Fanout => "fanout",
        ExchangeType.Headers => "headers",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static bool TryParseType(string name, out ExchangeType type)
    {
        switch (name)
        {
            case "direct": type = ExchangeType.Direct; return true;
            case "topic": type = ExchangeType.Topic; return true;
            case "fanout": type = ExchangeType.Fanout; return true;
            case "headers": type = ExchangeType.Headers; return true;
            default: type = default; return false;
        }
    }

    public IReadOnlyList<Binding> GetBindings()
    {
        lock (_bindings)
        {
            return [.. _bindings];
        }
    }

    internal abstract void Route(GatewayMessage message, RouteTargets targets);

    /// <summary>Adds a binding; false when an identical one exists.</summary>
    internal bool Bind(Binding binding)
    {
        lock (_bindings)
        {
            foreach (var existing in _bindings)
            {
                if (existing.Matches(binding.Key, binding.Queue, binding.Arguments))
                {
                    return false;
                }
            }

            AddToIndex(binding);
            _bindings.Add(binding);
            return true;
        }
    }

    internal bool Unbind(string key, MessageQueue queue, IReadOnlyDictionary<string, object?>? arguments)
    {
        lock (_bindings)
        {
            for (var i = 0; i < _bindings.Count; i++)
            {
                if (_bindings[i].Matches(key, queue, arguments))
                {
                    RemoveFromIndex(_bindings[i]);
                    _bindings.RemoveAt(i);
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Removes every binding to <paramref name="queue"/>; returns how many remain.</summary>
    internal int UnbindQueue(MessageQueue queue)
    {
        lock (_bindings)
        {
            for (var i = _bindings.Count - 1; i >= 0; i--)
            {
                if (ReferenceEquals(_bindings[i].Queue, queue))
                {
                    RemoveFromIndex(_bindings[i]);
                    _bindings.RemoveAt(i);
                }
            }

            return _bindings.Count;
        }
    }

    private protected abstract void AddToIndex(Binding binding);

    private protected abstract void RemoveFromIndex(Binding binding);

    private protected static Binding[] With(Binding[] bindings, Binding binding) => [.. bindings, binding];

    private protected static Binding[] Without(Binding[] bindings, Binding binding)
    {
        var index = Array.IndexOf(bindings, binding);
        if (index < 0)
        {
            return bindings;
        }

        var result = new Binding[bindings.Length - 1];
        Array.Copy(bindings, 0, result, 0, index);
        Array.Copy(bindings, index + 1, result, index, bindings.Length - index - 1);
        return result;
    }
}
