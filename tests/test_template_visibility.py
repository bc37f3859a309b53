"""A template's owner cannot freeze the workflows of other tenants that use it (issue 19, item 9).

Before: the workflows UPDATE policy checked on every UPDATE that the row's template is public or
the organization's own, so a tenant who made their public template private froze every other
tenant's workflow made from it (any UPDATE: 42501), and their snapshots no longer loaded. Now the
check runs only when template_id is set (INSERT) or changed (UPDATE), and an import keeps a
reference only to a template it may see, otherwise it drops it and says so.
"""
import json

from hub import snapshot
from hub.ids import new_id
from tests.test_attacks_tenancy import DENIED, world  # noqa: F401  (the fixture)

GRAPH = ('[{"id": "t", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {"label": "S"}},'
         ' {"id": "o", "type": "end", "position": {"x": 280, "y": 0}, "data": {"label": "D"}}]',
         '[{"id": "e", "source": "t", "target": "o"}]')


def workflow_from(world, template):
    workflow = new_id()
    assert world.run('cy', 'INSERT INTO workflows (id, name, nodes, edges, organization_id, '
                           'created_by, template_id) VALUES (%s, %s, %s, %s, %s, %s, %s)',
                     workflow, 'From B', *GRAPH, world['A'], world['cy'], template) == 1
    return workflow


def test_making_a_template_private_does_not_freeze_others_workflows(world):  # noqa: F811
    workflow = workflow_from(world, world['tpl'])
    assert world.run('eve', 'UPDATE workflow_templates SET is_public = false WHERE id = %s',
                     world['tpl']) == 1
    # A's workflow keeps working: the reference did not change.
    assert world.run('cy', "UPDATE workflows SET name = 'Renamed' WHERE id = %s", workflow) == 1
    # Setting it anew (INSERT, or an UPDATE that changes template_id) is still checked.
    other = workflow_from(world, None)
    assert world.refused('cy', 'UPDATE workflows SET template_id = %s WHERE id = %s',
                         world['tpl'], other)[0] == DENIED
    assert world.refused('cy', 'INSERT INTO workflows (name, nodes, edges, organization_id, '
                               'created_by, template_id) VALUES (%s, %s, %s, %s, %s, %s)',
                         'New', *GRAPH, world['A'], world['cy'], world['tpl'])[0] == DENIED
    # A reference set to itself is not a change; dropping it is allowed.
    assert world.run('cy', 'UPDATE workflows SET template_id = template_id WHERE id = %s',
                     workflow) == 1
    assert world.run('cy', 'UPDATE workflows SET template_id = NULL WHERE id = %s',
                     workflow) == 1
    assert world.refused('cy', 'UPDATE workflows SET template_id = %s WHERE id = %s',
                         world['tpl'], workflow)[0] == DENIED


def test_a_snapshot_whose_template_went_private_still_loads(world):  # noqa: F811
    workflow = workflow_from(world, world['tpl'])
    doc = json.loads(snapshot.dumps(snapshot.export_organization(world.database, world['A'])))
    assert world.run('eve', 'UPDATE workflow_templates SET is_public = false WHERE id = %s',
                     world['tpl']) == 1
    notices = []
    org_id, counts = snapshot.import_organization(world.database, doc, as_new=True,
                                                  link_users=True, owner=world['ada'],
                                                  notify=notices.append)
    [(template,)] = world.database.execute_sql(
        "SELECT template_id FROM workflows WHERE organization_id = %s AND name = 'From B'",
        (org_id,)).fetchall()
    assert template is None
    [notice] = notices
    assert world['tpl'] in notice and 'tables.workflows[' in notice and 'NULL' in notice, notice
    assert world.database.execute_sql('SELECT template_id FROM workflows WHERE id = %s',
                                      (workflow,)).fetchone() == (world['tpl'],)
