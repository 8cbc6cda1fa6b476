-- Argo CD health of bereit's kinds (Model, InferenceService, ComputeTarget in bereit.dev),
-- read from the kstatus conditions the operator writes, so Argo CD agrees with Flux:
--   status.observedGeneration behind metadata.generation  -> Progressing (not seen yet)
--   Stalled True    -> Degraded    (the user must act: the reason and message say what)
--   Reconciling True -> Progressing (a change is rolling out)
--   Ready True      -> Healthy
--   anything else   -> Progressing (no status yet, or Ready False/Unknown without Stalled)
-- Argo CD runs this with only the base and table libraries: no string functions here.
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  return c.reason
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the bereit operator to observe this " .. obj.kind
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = obj.kind .. " generation is " .. generation .. ", but latest observed generation is " .. obj.status.observedGeneration
  return hs
end

local conditions = obj.status.conditions or {}
local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
