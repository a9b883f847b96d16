-- Posts got their own permissions (posts:write to draft, schedule and publish; posts:approve to
-- review), where bots:write used to cover drafting. A custom role that could draft keeps that:
-- it gains posts:write. Built-in roles follow the code at start and need nothing here.
-- Permissions are a JSON array of strings, so a textual insert after "bots:write" keeps it one.
UPDATE roles SET permissions = REPLACE(permissions, '"bots:write"', '"bots:write","posts:write"')
WHERE builtin = 0 AND permissions LIKE '%"bots:write"%' AND permissions NOT LIKE '%"posts:write"%';
-- Likewise a service client whose scopes let it draft.
UPDATE service_clients SET scopes = REPLACE(scopes, '"bots:write"', '"bots:write","posts:write"')
WHERE scopes LIKE '%"bots:write"%' AND scopes NOT LIKE '%"posts:write"%';
