using System.Collections.Concurrent;

namespace Gateway.Routing;

/// <summary>Routes to bindings whose key equals the routing key.</summary>
internal sealed class DirectExchange(string name, bool durable, bool autoDelete)
    : Exchange(name, ExchangeType.Direct, durable, autoDelete)
{
    private readonly ConcurrentDictionary<string, Binding[]> _byKey = new(StringComparer.Ordinal);

    internal override void Route(GatewayMessage message, RouteTargets targets)
    {
        if (_byKey.TryGetValue(message.RoutingKey, out var bindings))
        {
            targets.AddAll(bindings);
        }
    }

    private protected override void AddToIndex(Binding binding) =>
        _byKey[binding.Key] = _byKey.TryGetValue(binding.Key, out var existing) ? With(existing, binding) : [binding];

    private protected override void RemoveFromIndex(Binding binding)
    {
        if (_byKey.TryGetValue(binding.Key, out var existing))
        {
            var remaining = Without(existing, binding);
            if (remaining.Length == 0)
            {
                _byKey.TryRemove(binding.Key, out _);
            }
            else
            {
                _byKey[binding.Key] = remaining;
            }
        }
    }
}

/// <summary>Routes to every bound queue.</summary>
internal sealed class FanoutExchange(string name, bool durable, bool autoDelete)
    : Exchange(name, ExchangeType.Fanout, durable, autoDelete)
{
    private volatile Binding[] _all = [];

    internal override void Route(GatewayMessage message, RouteTargets targets) => targets.AddAll(_all);

    private protected override void AddToIndex(Binding binding) => _all = With(_all, binding);

    private protected override void RemoveFromIndex(Binding binding) => _all = Without(_all, binding);
}

/// <summary>
/// The nameless default exchange: every queue is implicitly bound under its own name.
/// https://www.rabbitmq.com/docs/exchanges#default-exchange
/// </summary>
internal sealed class DefaultExchange(MessageRouter router) : Exchange(string.Empty, ExchangeType.Direct, durable: true, autoDelete: false)
{
    internal override void Route(GatewayMessage message, RouteTargets targets)
    {
        if (router.TryGetQueue(message.RoutingKey, out var queue))
        {
            targets.Add(queue);
        }
    }

    private protected override void AddToIndex(Binding binding) =>
        RoutingException.Throw(RoutingException.AccessRefused, "operation not permitted on the default exchange");

    private protected override void RemoveFromIndex(Binding binding)
    {
    }
}
