namespace Gateway.Routing.Tests;

[Trait("Category", "Unit")]
public sealed class ExchangeTests : RouterTestBase
{
    [Fact]
    public void Built_in_exchanges_exist()
    {
        foreach (var name in new[] { "", "amq.direct", "amq.topic", "amq.fanout", "amq.headers", "amq.match" })
        {
            Assert.True(Router.GetExchange(name).BuiltIn);
        }
    }

    [Fact]
    public void Default_exchange_routes_by_queue_name_and_refuses_bindings()
    {
        var q = Queue("orders");

        Assert.Equal(RouteStatus.Routed, Router.Route(Message("", "orders")).Status);
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("", "nobody")).Status);
        Assert.Equal(["x"], Drain(q));

        var error = Assert.Throws<RoutingException>(() => Router.Bind("", "orders", "k"));
        Assert.Equal(RoutingException.AccessRefused, error.ReplyCode);
    }

    [Fact]
    public void Direct_exchange_matches_whole_key()
    {
        var a = Queue("a");
        var b = Queue("b");
        Router.Bind("amq.direct", "a", "red");
        Router.Bind("amq.direct", "b", "red");
        Router.Bind("amq.direct", "b", "blue");

        Assert.Equal(2, Router.Route(Message("amq.direct", "red")).QueueCount);
        Assert.Equal(1, Router.Route(Message("amq.direct", "blue")).QueueCount);
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("amq.direct", "red.x")).Status);
        Assert.Equal(1, a.ReadyCount);
        Assert.Equal(2, b.ReadyCount);
    }

    [Fact]
    public void Fanout_exchange_ignores_key()
    {
        Queue("a");
        Queue("b");
        Router.Bind("amq.fanout", "a", "");
        Router.Bind("amq.fanout", "b", "whatever");

        Assert.Equal(2, Router.Route(Message("amq.fanout", "anything")).QueueCount);
    }

    [Fact]
    public void Headers_exchange_matches_all_or_any()
    {
        Queue("all");
        Queue("any");
        Router.Bind("amq.headers", "all", "", new Dictionary<string, object?> { ["x-match"] = "all", ["format"] = "pdf", ["type"] = "report" });
        Router.Bind("amq.headers", "any", "", new Dictionary<string, object?> { ["x-match"] = "any", ["format"] = "pdf", ["type"] = "log" });

        MessageProperties Headers(params (string, object?)[] pairs) => new() { Headers = pairs.ToDictionary(p => p.Item1, p => p.Item2) };

        Assert.Equal(2, Router.Route(Message("amq.headers", "", properties: Headers(("format", "pdf"), ("type", "report")))).QueueCount);
        Assert.Equal(1, Router.Route(Message("amq.headers", "", properties: Headers(("format", "pdf")))).QueueCount);
        Assert.Equal(1, Router.Route(Message("amq.headers", "", properties: Headers(("type", "log")))).QueueCount);
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("amq.headers", "", properties: Headers(("type", "other")))).Status);
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("amq.headers", "")).Status);
    }

    [Fact]
    public void Declaring_exchanges_checks_equivalence_and_reserved_names()
    {
        Router.DeclareExchange("events", ExchangeType.Topic);
        Assert.Same(Router.GetExchange("events"), Router.DeclareExchange("events", ExchangeType.Topic));

        Assert.Equal(RoutingException.PreconditionFailed, Assert.Throws<RoutingException>(() => Router.DeclareExchange("events", ExchangeType.Fanout)).ReplyCode);
        Assert.Equal(RoutingException.AccessRefused, Assert.Throws<RoutingException>(() => Router.DeclareExchange("amq.custom", ExchangeType.Topic)).ReplyCode);
        Assert.Equal(RoutingException.NotFound, Assert.Throws<RoutingException>(() => Router.GetExchange("missing")).ReplyCode);
        Assert.Equal(RouteStatus.ExchangeNotFound, Router.Route(Message("missing", "k")).Status);
    }

    [Fact]
    public void Auto_delete_exchange_goes_with_its_last_binding()
    {
        Router.DeclareExchange("temp", ExchangeType.Direct, autoDelete: true);
        Queue("q");
        Router.Bind("temp", "q", "k");

        Router.Unbind("temp", "q", "k");

        Assert.Throws<RoutingException>(() => Router.GetExchange("temp"));
    }

    [Fact]
    public void Deleting_a_queue_removes_its_bindings()
    {
        Queue("q");
        Router.Bind("amq.topic", "q", "a.#");
        Router.Bind("amq.direct", "q", "a");

        Router.DeleteQueue("q");

        Assert.Equal(0, Router.GetExchange("amq.topic").BindingCount);
        Assert.Equal(0, Router.GetExchange("amq.direct").BindingCount);
        Assert.Equal(RouteStatus.Unroutable, Router.Route(Message("amq.topic", "a.b")).Status);
    }

    [Fact]
    public void Durable_queues_need_the_store()
    {
        var error = Assert.Throws<RoutingException>(() => Router.DeclareQueue("d", new QueueOptions { Durable = true }));
        Assert.Equal(RoutingException.NotImplemented, error.ReplyCode);
    }
}
