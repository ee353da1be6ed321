/*
 * Boots GraphiQL for Insights (adapted from strawberry-graphql's graphiql.html).
 *
 * Expects the globals React, ReactDOM, GraphiQL and GraphiQLPluginExplorer,
 * loaded from our own vendored copies (see index.html), and reads the GraphQL
 * endpoint path from <div id="graphiql" data-graphql-path="...">.
 *
 * - Queries and mutations: HTTP POST to the endpoint, same origin, with
 *   credentials "same-origin" so the insights_session cookie is sent.
 * - Subscriptions: WebSocket (graphql-transport-ws, via the graphql-ws client
 *   bundled inside graphiql.min.js) at the same path, ws:// or wss:// to match
 *   the page; the browser sends the session cookie with the upgrade request.
 */
(function () {
  "use strict";

  var EXAMPLE_QUERY = [
    "# Welcome to the Insights GraphiQL",
    "#",
    "# GraphiQL is an in-browser tool for writing, validating, and",
    "# testing GraphQL queries. It is aware of the Insights schema:",
    "# type to get completions, and open the docs on the left.",
    "#",
    "# Keyboard shortcuts:",
    "#",
    "#       Run Query:  Ctrl-Enter (or press the play button)",
    "#",
    "#   Auto Complete:  Ctrl-Space (or just start typing)",
    "#",
    "",
    "{",
    "  viewer {",
    "    email",
    "  }",
    "}",
    "",
  ].join("\n");

  var container = document.getElementById("graphiql");
  var graphqlPath = container.getAttribute("data-graphql-path") || "/graphql";

  // Resolve against the page so the endpoint is always on this origin.
  var fetchURL = new URL(graphqlPath, window.location.href);
  fetchURL.hash = "";
  var subscriptionURL = new URL(fetchURL.href);
  subscriptionURL.protocol = fetchURL.protocol === "https:" ? "wss:" : "ws:";

  // Parse URL parameters for sharing queries (?q=...&variables=...).
  var parameters = {};
  window.location.search
    .slice(1)
    .split("&")
    .forEach(function (entry) {
      var eq = entry.indexOf("=");
      if (eq >= 0) {
        parameters[decodeURIComponent(entry.slice(0, eq))] = decodeURIComponent(
          entry.slice(eq + 1),
        );
      }
    });

  function updateURL(data) {
    Object.assign(parameters, data);
    var newSearch =
      "?" +
      Object.keys(parameters)
        .filter(function (key) {
          return Boolean(parameters[key]);
        })
        .map(function (key) {
          return encodeURIComponent(key) + "=" + encodeURIComponent(parameters[key]);
        })
        .join("&");
    history.replaceState(null, "", newSearch);
  }

  function sameOriginFetch(input, init) {
    return window.fetch(input, Object.assign({}, init, { credentials: "same-origin" }));
  }

  var fetcher = GraphiQL.createFetcher({
    url: fetchURL.href,
    subscriptionUrl: subscriptionURL.href,
    fetch: sameOriginFetch,
  });

  function InsightsGraphiQL() {
    var queryState = React.useState(parameters.q || EXAMPLE_QUERY);
    var variablesState = React.useState(parameters.variables);
    var headersState = React.useState(parameters.headers);
    var explorerPlugin = React.useMemo(function () {
      return GraphiQLPluginExplorer.explorerPlugin();
    }, []);

    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [explorerPlugin],
      query: queryState[0],
      variables: variablesState[0],
      headers: headersState[0],
      onEditQuery: function (newQuery) {
        queryState[1](newQuery);
        updateURL({ q: newQuery });
      },
      onEditVariables: function (newVariables) {
        variablesState[1](newVariables);
        updateURL({ variables: newVariables });
      },
      onEditHeaders: function (newHeaders) {
        headersState[1](newHeaders);
      },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  ReactDOM.createRoot(container).render(React.createElement(InsightsGraphiQL));
})();
