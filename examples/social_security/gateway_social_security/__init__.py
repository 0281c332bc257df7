"""社保局 (county social-security bureau): pension recipients' deaths reported by families.

An example plugin for the interagency data-exchange gateway: its own contract
(`PensionDeathReport`), an XLSX adapter, its own rejection codes with Chinese and English
reason texts, and a reconciliation rule that pairs each reported death with the police's
death registration (死亡注销). docs/plugins.md walks through it.
"""
