# Copyright: openstack_dr.bank contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Authentication and deadline options shared by every module that talks to OpenStack."""

from __future__ import annotations


class ModuleDocFragment:
    # The same options, names and meaning as openstack.cloud's, so playbooks and module_defaults carry over.
    DOCUMENTATION = r"""
options:
  cloud:
    description:
      - Named cloud or cloud config to operate against.
      - If O(cloud) is a string, it references a named cloud config as defined in an OpenStack
        C(clouds.yaml) file. Provides default values for O(auth) and O(auth_type). This option is
        not needed if O(auth) is provided or if OpenStack C(OS_*) environment variables are present.
      - If O(cloud) is a dict, it contains a complete cloud configuration like a section of
        C(clouds.yaml); O(auth), O(auth_type), O(region_name), O(validate_certs), O(ca_cert),
        O(client_cert), O(client_key), O(api_timeout) and a non-default O(interface) must then not be given.
    type: raw
  auth:
    description:
      - Dictionary containing auth information as needed by the cloud's auth plugin strategy.
        For the default V(password) plugin, this would contain C(auth_url), C(username),
        C(password), C(project_name) and any information about domains (for example,
        C(user_domain_name) or C(project_domain_name)) if the cloud supports them.
      - Not needed if a named cloud is provided or OpenStack C(OS_*) environment variables are present.
      - Never logged nor returned.
    type: dict
  auth_type:
    description:
      - Name of the auth plugin to use. If the cloud uses something other than password
        authentication, the name of the plugin should be indicated here and the contents of the
        O(auth) option should be updated accordingly.
    type: str
  region_name:
    description:
      - Name of the region.
    type: str
  validate_certs:
    description:
      - Whether or not SSL API requests should be verified.
    type: bool
    aliases: [verify]
  ca_cert:
    description:
      - A path to a CA Cert bundle that can be used as part of verifying SSL API requests.
    type: str
    aliases: [cacert]
  client_cert:
    description:
      - A path to a client certificate to use as part of the SSL transaction.
    type: str
    aliases: [cert]
  client_key:
    description:
      - A path to a client key to use as part of the SSL transaction.
    type: str
    aliases: [key]
  interface:
    description:
      - Endpoint URL type to fetch from the service catalog.
    type: str
    choices: [admin, internal, public]
    default: public
    aliases: [endpoint_type]
  api_timeout:
    description:
      - How long (in seconds) a single API request may take before it is abandoned.
      - This is the HTTP timeout of one call, not the deadline of a waited step; see O(timeout).
      - From V(1) to V(3600) when given.
    type: int
  timeout:
    description:
      - Deadline, in seconds, of each waited step (a snapshot becoming available, a volume
        uploaded to an image, an image upload, a volume created from an image) and of each removal
        of a temporary (waiting until it can be deleted, the delete and waiting until it is gone
        share this one deadline). From V(1) to V(604800) (a week).
      - Each step has its own deadline; it is not a limit on the whole run. A step that passes its
        deadline fails with the resource id and its last status, and triggers the same cleanup of
        temporaries as any other failure.
      - Unlike C(openstack.cloud), there is no C(wait) option, because every step waits for what it creates;
        the next step needs it and its removal must be waited for.
      - Unlike C(openstack.cloud)'s 180 seconds, the default of 3600 seconds fits data transfers;
        a volume upload to an image runs at roughly 100 MiB/s on common back ends, so an hour covers
        a few hundred GiB. Steps that copy a volume's data never get less than 60 seconds per GiB of
        the volume, so a 1 TiB volume is allowed about 17 hours per data step even with the default.
    type: int
    default: 3600
  sdk_log_path:
    description:
      - Path to the logfile of the OpenStackSDK logger. If empty no log is written.
    type: str
  sdk_log_level:
    description:
      - Log level of the OpenStackSDK.
    type: str
    default: INFO
    choices: [INFO, DEBUG]
requirements:
  - python >= 3.11
  - openstacksdk >= 1.0.0
notes:
  - The standard OpenStack environment variables, such as C(OS_USERNAME), may be used instead of
    providing explicit values.
  - Auth information is driven by openstacksdk, which means that values can come from a yaml config
    file in C(/etc/ansible/openstack.yaml), C(/etc/openstack/clouds.yaml) or
    C(~/.config/openstack/clouds.yaml), then from standard environment variables, then finally by
    explicit parameters in plays. More information is at U(https://docs.openstack.org/openstacksdk/).
"""
