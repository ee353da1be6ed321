"""The demo tracking plan `projectCreateDemo` builds: plain data, no code (the builder is demo.py).

A small storefront with a web site and mobile apps: page and screen views, authentication,
checkout and commerce, search and onboarding, with the fields, meta fields, variables (and their
values) and relations such a plan has. Events spread over every status of the lifecycle.

References between the pieces are by name: an event names its event type and its fields, a
relation names `event_type.field`. Field values that are `${variable}` refer to a variable of
VARIABLES. Every value is text, as events store them; an ENUM field's value is one of its options
or a `${variable}` reference.
"""

from __future__ import annotations

DEFAULT_NAME = "Demo tracking plan"
DESCRIPTION = ("A sample tracking plan of a storefront with a web site and mobile apps. Look around, change "
               "anything, or delete it when you no longer need it.")

# (name, display name, description, color, fields)
# field: (name, display name, type, required, enum options or None, description, sensitivity)
EVENT_TYPES: list[tuple] = [
    ("page_view", "Page views", "A page of the web site was shown.", "#6366f1", [
        ("page_name", "Page name", "string", True, None, "Logical name of the page.", "none"),
        ("page_path", "Page path", "string", True, None, "URL path without query string.", "none"),
        ("page_category", "Page category", "enum", False,
         ["home", "catalog", "product", "cart", "checkout", "account", "content"], "Section of the site.", "none"),
        ("referrer", "Referrer", "url", False, None, "Where the visitor came from.", "none"),
        ("session_id", "Session ID", "string", True, None, "The browser session.", "none"),
    ]),
    ("screen_view", "Screen views", "A screen of the mobile app was shown.", "#0ea5e9", [
        ("screen_name", "Screen name", "string", True, None, "Logical name of the screen.", "none"),
        ("screen_class", "Screen class", "string", False, None, "View controller or activity class.", "none"),
        ("platform", "Platform", "enum", True, ["ios", "android"], "Mobile operating system.", "none"),
        ("app_version", "App version", "string", True, None, "Semantic version of the app build.", "none"),
        ("session_id", "Session ID", "string", True, None, "The app session.", "none"),
    ]),
    ("auth", "Authentication", "Sign up, sign in and sign out.", "#22c55e", [
        ("user_id", "User ID", "string", True, None, "Our user identifier.", "pii"),
        ("method", "Method", "enum", True, ["email", "google", "apple", "sso"], "How the user authenticated.", "none"),
        ("success", "Success", "boolean", True, None, "Whether the attempt succeeded.", "none"),
        ("error_code", "Error code", "string", False, None, "Why it failed, when it did.", "none"),
        ("session_id", "Session ID", "string", True, None, "The session it started or ended.", "none"),
    ]),
    ("commerce", "Checkout & commerce", "Cart, checkout, payment and orders.", "#f59e0b", [
        ("user_id", "User ID", "string", True, None, "Who is buying.", "pii"),
        ("order_id", "Order ID", "string", False, None, "Set once the order exists.", "none"),
        ("product_id", "Product ID", "string", False, None, "The product concerned.", "none"),
        ("price", "Price", "number", False, None, "Unit price in the currency.", "financial"),
        ("currency", "Currency", "enum", False, ["USD", "EUR", "GBP"], "ISO 4217 code.", "financial"),
        ("quantity", "Quantity", "number", False, None, "How many units.", "none"),
        ("payment_method", "Payment method", "enum", False, ["card", "paypal", "apple_pay", "google_pay"],
         "How the order was paid.", "financial"),
        ("coupon_code", "Coupon code", "string", False, None, "A promotion code, if any.", "none"),
    ]),
    ("search", "Search", "Site and app search.", "#a855f7", [
        ("query", "Query", "string", True, None, "What the user typed.", "pii"),
        ("search_type", "Search type", "enum", True, ["products", "content", "help"], "What was searched.", "none"),
        ("results_count", "Results count", "number", True, None, "How many results were shown.", "none"),
        ("clicked_product_id", "Clicked product ID", "string", False, None, "The result the user opened.", "none"),
        ("filters", "Filters", "json", False, None, "Facets applied, as JSON.", "none"),
    ]),
    ("onboarding", "Onboarding", "The first-run experience of new users.", "#ef4444", [
        ("user_id", "User ID", "string", True, None, "The new user.", "pii"),
        ("step_name", "Step name", "string", True, None, "Which step.", "none"),
        ("step_index", "Step index", "number", True, None, "Position of the step, from 1.", "none"),
        ("variant", "Experiment variant", "enum", False, ["control", "a", "b"], "Onboarding experiment arm.", "none"),
        ("skipped", "Skipped", "boolean", False, None, "Whether the user skipped the step.", "none"),
    ]),
]

# (name, display name, type, required, enum options, default value, link template, sensitivity)
META_FIELDS: list[tuple] = [
    ("team", "Owning team", "enum", True, ["growth", "checkout", "search", "mobile", "identity"], None, None, "none"),
    ("jira_ticket", "Jira ticket", "string", False, None, None, "https://jira.example.com/browse/{value}", "none"),
    ("spec_url", "Spec", "url", False, None, None, None, "none"),
    ("privacy_reviewed", "Privacy reviewed", "boolean", False, None, "false", None, "none"),
    ("launch_date", "Launch date", "date", False, None, None, None, "none"),
]

# (name, type, description, [(value, occurrences, event_count)])
VARIABLES: list[tuple] = [
    ("page_name", "string", "Logical page name, filled by the router.",
     [("home", 182_340, 3), ("product", 95_112, 3), ("catalog", 61_020, 2), ("cart", 20_311, 2),
      ("checkout", 12_870, 1)]),
    ("screen_name", "string", "Logical screen name in the apps.",
     [("Home", 120_004, 2), ("ProductDetail", 64_220, 2), ("Cart", 18_100, 1), ("Profile", 9_870, 1)]),
    ("product_id", "string", "Catalog SKU.",
     [("SKU-1001", 4_210, 4), ("SKU-2044", 3_980, 4), ("SKU-0310", 1_204, 3)]),
    ("order_id", "string", "Order number, `ORD-` and 8 digits.",
     [("ORD-10002931", 1, 2), ("ORD-10002932", 1, 2)]),
    ("currency", "string", "The shopper's currency.", [("USD", 21_400, 5), ("EUR", 9_830, 5), ("GBP", 4_110, 5)]),
    ("app_version", "string", "Version of the app build.", [("4.12.0", 52_300, 6), ("4.11.2", 18_020, 6)]),
    ("step_index", "number", "Position of an onboarding step.", [("1", 8_200, 4), ("2", 7_410, 4), ("3", 6_990, 4)]),
    ("is_returning_user", "boolean", "Whether the user signed in before.", [("true", 30_100, 3), ("false", 12_400, 3)]),
    ("release_date", "date", "Release the event shipped with.", [("2024-03-01", 0, 0), ("2024-05-15", 0, 0)]),
    ("experiment_variants", "string_array", "Experiment arms the user is in.", [("control", 900, 2), ("b", 420, 2)]),
    ("search_filters", "json", "Facets of a search, as JSON.",
     [('{"brand": "acme"}', 310, 1), ('{"price_max": 50}', 120, 1)]),
    ("search_query", "string", "What users search for (trimmed, lower case).",
     [("running shoes", 2_310, 4), ("rain jacket", 1_204, 4), ("gift card", 880, 3)]),
    ("step_name", "string", "Name of an onboarding step.",
     [("welcome", 8_200, 3), ("profile", 7_410, 3), ("interests", 6_990, 3), ("notifications", 5_100, 3)]),
    ("signup_method", "string", "How a new user signs up.", [("email", 6_100, 1), ("google", 4_400, 1),
                                                                ("apple", 2_050, 1)]),
    ("user_id", "string", "Our user identifier (a UUID; personal data).", []),
    ("session_id", "string", "The browser or app session.", []),
]

# (source "type.field", target "type.field", relation type, description)
RELATIONS: list[tuple] = [
    ("commerce.user_id", "auth.user_id", "belongs_to", "Orders belong to the user who signed in."),
    ("onboarding.user_id", "auth.user_id", "belongs_to", "Onboarding steps belong to the new user."),
    ("page_view.session_id", "auth.session_id", "same_session", "Page views within the signed-in session."),
    ("screen_view.session_id", "auth.session_id", "same_session", "Screen views within the signed-in session."),
    ("search.clicked_product_id", "commerce.product_id", "references", "The search result that was bought."),
]

# (event type, name, status, tags, {field: value}, {meta field: value}, reviewed, description)
EVENTS: list[tuple] = [
    # page views
    ("page_view", "Page Viewed", "live", ["core", "web"],
     {"page_name": "${page_name}", "page_path": "/${page_name}", "session_id": "${session_id}"},
     {"team": "growth", "privacy_reviewed": "true"}, True, "Any page of the site; the page name is a variable."),
    ("page_view", "Home Viewed", "live", ["core", "web"],
     {"page_name": "home", "page_path": "/", "page_category": "home"},
     {"team": "growth", "jira_ticket": "WEB-101"}, True, "The landing page."),
    ("page_view", "Product Page Viewed", "live", ["web", "commerce"],
     {"page_name": "product", "page_path": "/p/${product_id}", "page_category": "product"},
     {"team": "growth", "jira_ticket": "WEB-118"}, True, "A product detail page."),
    ("page_view", "Catalog Viewed", "implemented", ["web"],
     {"page_name": "catalog", "page_path": "/c", "page_category": "catalog"},
     {"team": "growth"}, True, "A category listing."),
    ("page_view", "Cart Viewed", "ready_for_dev", ["web", "commerce"],
     {"page_name": "cart", "page_path": "/cart", "page_category": "cart"},
     {"team": "checkout", "jira_ticket": "WEB-140"}, False, "The cart page."),
    ("page_view", "Help Center Viewed", "in_review", ["web", "support"],
     {"page_name": "help", "page_path": "/help", "page_category": "content"},
     {"team": "growth"}, False, "Help articles."),
    ("page_view", "Legacy Landing Viewed", "deprecated", ["web", "legacy"],
     {"page_name": "landing_v1", "page_path": "/lp", "page_category": "content"},
     {"team": "growth", "jira_ticket": "WEB-12"}, True, "Replaced by Home Viewed; still sent by old campaigns."),
    ("page_view", "Blog Post Viewed", "archived", ["web", "legacy"],
     {"page_name": "blog_post", "page_path": "/blog/${page_name}", "page_category": "content"},
     {"team": "growth"}, True, "The blog moved to another site."),
    # screen views
    ("screen_view", "Screen Viewed", "live", ["core", "mobile"],
     {"screen_name": "${screen_name}", "platform": "ios", "app_version": "${app_version}"},
     {"team": "mobile", "privacy_reviewed": "true"}, True, "Any app screen; the screen name is a variable."),
    ("screen_view", "Home Screen Viewed", "live", ["mobile"],
     {"screen_name": "Home", "screen_class": "HomeViewController", "platform": "ios", "app_version": "${app_version}"},
     {"team": "mobile"}, True, "The first screen after launch."),
    ("screen_view", "Product Screen Viewed", "implemented", ["mobile", "commerce"],
     {"screen_name": "ProductDetail", "platform": "android", "app_version": "${app_version}"},
     {"team": "mobile", "jira_ticket": "APP-77"}, True, "A product detail screen."),
    ("screen_view", "Profile Screen Viewed", "ready_for_dev", ["mobile"],
     {"screen_name": "Profile", "platform": "android", "app_version": "${app_version}"},
     {"team": "mobile"}, False, "The user's profile."),
    ("screen_view", "Widget Screen Viewed", "draft", ["mobile", "experiment"],
     {"screen_name": "Widget", "platform": "ios", "app_version": "${app_version}"},
     {"team": "mobile", "launch_date": "2025-01-15"}, False, "The home-screen widget, not built yet."),
    # authentication
    ("auth", "Sign Up Started", "live", ["core", "identity"],
     {"method": "${signup_method}", "success": "true"},
     {"team": "identity", "privacy_reviewed": "true"}, True, "The sign-up form was opened."),
    ("auth", "Sign Up Completed", "live", ["core", "identity", "conversion"],
     {"user_id": "${user_id}", "method": "email", "success": "true", "session_id": "${session_id}"},
     {"team": "identity", "privacy_reviewed": "true"}, True, "An account was created."),
    ("auth", "Signed In", "live", ["core", "identity"],
     {"user_id": "${user_id}", "method": "google", "success": "true", "session_id": "${session_id}"},
     {"team": "identity"}, True, "A user signed in."),
    ("auth", "Sign In Failed", "implemented", ["identity", "errors"],
     {"method": "email", "success": "false", "error_code": "invalid_password"},
     {"team": "identity"}, True, "A sign-in attempt failed."),
    ("auth", "Signed Out", "live", ["identity"],
     {"user_id": "${user_id}", "method": "email", "success": "true"},
     {"team": "identity"}, True, "A user signed out."),
    ("auth", "Password Reset Requested", "in_review", ["identity"],
     {"method": "email", "success": "true"},
     {"team": "identity", "jira_ticket": "ID-52"}, False, "The reset link was sent."),
    ("auth", "SSO Connected", "draft", ["identity", "enterprise"],
     {"method": "sso", "success": "true"},
     {"team": "identity", "launch_date": "2025-03-01"}, False, "An organization connected its identity provider."),
    # commerce
    ("commerce", "Product Added to Cart", "live", ["core", "commerce", "conversion"],
     {"user_id": "${user_id}", "product_id": "${product_id}", "price": "19.99", "currency": "${currency}",
      "quantity": "1"},
     {"team": "checkout", "privacy_reviewed": "true"}, True, "A product went into the cart."),
    ("commerce", "Product Removed from Cart", "live", ["commerce"],
     {"user_id": "${user_id}", "product_id": "${product_id}", "quantity": "1"},
     {"team": "checkout"}, True, "A product left the cart."),
    ("commerce", "Checkout Started", "live", ["core", "commerce", "conversion"],
     {"user_id": "${user_id}", "currency": "${currency}"},
     {"team": "checkout", "jira_ticket": "CHK-9"}, True, "The shopper opened the checkout."),
    ("commerce", "Payment Info Entered", "implemented", ["commerce"],
     {"user_id": "${user_id}", "payment_method": "card", "currency": "${currency}"},
     {"team": "checkout"}, True, "Payment details were entered."),
    ("commerce", "Order Completed", "live", ["core", "commerce", "conversion", "revenue"],
     {"user_id": "${user_id}", "order_id": "${order_id}", "price": "54.50", "currency": "${currency}",
      "payment_method": "card"},
     {"team": "checkout", "privacy_reviewed": "true", "spec_url": "https://docs.example.com/tracking/order-completed"},
     True, "An order was placed and paid."),
    ("commerce", "Order Refunded", "ready_for_dev", ["commerce", "revenue"],
     {"user_id": "${user_id}", "order_id": "${order_id}", "currency": "${currency}"},
     {"team": "checkout", "jira_ticket": "CHK-31"}, False, "An order was refunded."),
    ("commerce", "Coupon Applied", "in_review", ["commerce", "promotions"],
     {"user_id": "${user_id}", "coupon_code": "SPRING24"},
     {"team": "checkout"}, False, "A coupon code was accepted."),
    ("commerce", "Wishlist Item Added", "draft", ["commerce", "experiment"],
     {"user_id": "${user_id}", "product_id": "${product_id}"},
     {"team": "growth"}, False, "Saving a product for later."),
    ("commerce", "Express Checkout Used", "deprecated", ["commerce", "legacy"],
     {"user_id": "${user_id}", "payment_method": "paypal"},
     {"team": "checkout"}, True, "The old one-click flow; Payment Info Entered covers it now."),
    # search
    ("search", "Search Performed", "live", ["core", "search"],
     {"query": "${search_query}", "search_type": "products", "results_count": "24", "filters": "${search_filters}"},
     {"team": "search", "privacy_reviewed": "true"}, True, "A search ran."),
    ("search", "Search Result Clicked", "live", ["search", "conversion"],
     {"query": "${search_query}", "search_type": "products", "results_count": "24",
      "clicked_product_id": "${product_id}"},
     {"team": "search"}, True, "A result was opened."),
    ("search", "Search No Results", "implemented", ["search", "errors"],
     {"query": "${search_query}", "search_type": "products", "results_count": "0"},
     {"team": "search"}, True, "A search found nothing."),
    ("search", "Help Search Performed", "ready_for_dev", ["search", "support"],
     {"query": "${search_query}", "search_type": "help", "results_count": "5"},
     {"team": "search"}, False, "A search in the help center."),
    ("search", "Search Suggestion Clicked", "draft", ["search", "experiment"],
     {"query": "${search_query}", "search_type": "products", "results_count": "8"},
     {"team": "search", "launch_date": "2025-02-10"}, False, "An autocomplete suggestion was used."),
    ("search", "Voice Search Used", "archived", ["search", "legacy"],
     {"query": "${search_query}", "search_type": "products", "results_count": "3"},
     {"team": "search"}, True, "Voice search was removed in 4.0."),
    # onboarding
    ("onboarding", "Onboarding Started", "live", ["core", "onboarding"],
     {"user_id": "${user_id}", "step_name": "welcome", "step_index": "1", "variant": "${experiment_variants}"},
     {"team": "growth", "privacy_reviewed": "true"}, True, "The first onboarding step was shown."),
    ("onboarding", "Onboarding Step Completed", "live", ["onboarding"],
     {"user_id": "${user_id}", "step_name": "${step_name}", "step_index": "${step_index}",
      "variant": "${experiment_variants}"},
     {"team": "growth"}, True, "Any step was completed."),
    ("onboarding", "Onboarding Step Skipped", "implemented", ["onboarding"],
     {"user_id": "${user_id}", "step_name": "${step_name}", "step_index": "${step_index}", "skipped": "true"},
     {"team": "growth"}, True, "A step was skipped."),
    ("onboarding", "Onboarding Completed", "in_review", ["onboarding", "conversion"],
     {"user_id": "${user_id}", "step_name": "done", "step_index": "5"},
     {"team": "growth", "jira_ticket": "GRO-204"}, False, "The last step was reached."),
    ("onboarding", "Notification Permission Asked", "draft", ["onboarding", "mobile"],
     {"user_id": "${user_id}", "step_name": "notifications", "step_index": "${step_index}", "variant": "b"},
     {"team": "mobile", "launch_date": "2025-04-01"}, False, "The OS notification prompt, inside onboarding."),
    ("onboarding", "Tour Video Played", "deprecated", ["onboarding", "legacy"],
     {"user_id": "${user_id}", "step_name": "tour", "step_index": "2"},
     {"team": "growth"}, True, "The tour video is being replaced by interactive tips."),
]

# Metric breakdown columns per event type (what a scan splits an event's volume by).
BREAKDOWNS: dict[str, list[str]] = {
    "page_view": ["page_category"],
    "screen_view": ["platform", "app_version"],
    "auth": ["method"],
    "commerce": ["currency", "payment_method"],
    "search": ["search_type"],
    "onboarding": ["variant"],
}
